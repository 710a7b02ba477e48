#include "daemon/http.h"

#include <civetweb.h>
#include <prometheus/text_serializer.h>

#include <cstring>

namespace siteprobe {
namespace {

void reply(mg_connection* c, int status, const char* type, const std::string& body) {
  mg_printf(c,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            status, mg_get_response_code_text(c, status), type, body.size());
  if (std::strcmp(mg_get_request_info(c)->request_method, "HEAD") != 0) mg_write(c, body.data(), body.size());
}

bool method_ok(mg_connection* c) {
  const char* m = mg_get_request_info(c)->request_method;
  if (std::strcmp(m, "GET") == 0 || std::strcmp(m, "HEAD") == 0) return true;
  reply(c, 405, "text/plain; charset=utf-8", "Only GET and HEAD are allowed.\n");
  return false;
}

}  // namespace

std::string HttpServer::render() const {
  std::string out = prometheus::TextSerializer().Serialize(registry_->Collect());
  for (const auto& e : expositions_) e->render(out);
  return out;
}

std::string HttpServer::start(const std::string& listen) {
  // CivetWeb wants "PORT" for all addresses, "IP:PORT" or "[IPV6]:PORT" otherwise.
  std::string ports = listen;
  if (!ports.empty() && ports[0] == ':') ports = ports.substr(1);
  if (ports.rfind("0.0.0.0:", 0) == 0) ports = ports.substr(8);
  const char* options[] = {
      "listening_ports", ports.c_str(), "request_timeout_ms", "30000", "enable_keep_alive", "no", nullptr};
  static thread_local std::string start_error;  // CivetWeb reports bind errors through log_message
  start_error.clear();
  mg_callbacks cb{};
  cb.log_message = [](const mg_connection*, const char* msg) {
    if (start_error.empty()) start_error = msg;
    return 1;
  };
  mg_init_library(0);
  ctx_ = mg_start(&cb, this, options);
  if (!ctx_)
    return "cannot listen on " + listen + ": " + (start_error.empty() ? "unknown error" : start_error);
  mg_set_request_handler(
      ctx_, "/metrics$",
      [](mg_connection* c, void* self) {
        if (method_ok(c))
          reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", static_cast<HttpServer*>(self)->render());
        return 1;
      },
      this);
  mg_set_request_handler(
      ctx_, "/-/healthy$",
      [](mg_connection* c, void*) {
        if (method_ok(c)) reply(c, 200, "text/plain; charset=utf-8", "siteprobe is Healthy.\n");
        return 1;
      },
      this);
  mg_set_request_handler(
      ctx_, "/-/ready$",
      [](mg_connection* c, void* self) {
        if (!method_ok(c)) return 1;
        if (static_cast<HttpServer*>(self)->ready_.load())
          reply(c, 200, "text/plain; charset=utf-8", "siteprobe is Ready.\n");
        else
          reply(c, 503, "text/plain; charset=utf-8", "siteprobe is not ready.\n");
        return 1;
      },
      this);
  for (const auto& p : pages_)
    mg_set_request_handler(
        ctx_, (p->first + "$").c_str(),
        [](mg_connection* c, void* page) {
          if (!method_ok(c)) return 1;
          const auto [status, body] = static_cast<std::pair<std::string, Page>*>(page)->second();
          reply(c, status, "text/plain; charset=utf-8", body);
          return 1;
        },
        p.get());
  mg_set_request_handler(
      ctx_, "/$",
      [](mg_connection* c, void*) {
        if (method_ok(c))
          reply(c, 200, "text/html; charset=utf-8",
                "<html><head><title>siteprobe</title></head><body><h1>siteprobe</h1>"
                "<p><a href=\"/metrics\">Metrics</a></p></body></html>\n");
        return 1;
      },
      this);
  return "";
}

void HttpServer::stop() {
  if (ctx_) mg_stop(ctx_);
  ctx_ = nullptr;
}

}  // namespace siteprobe
