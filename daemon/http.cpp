#include "daemon/http.h"

#include <civetweb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <prometheus/text_serializer.h>

#include <cstring>
#include <thread>

namespace siteprobe {
namespace {

constexpr const char* kText = "text/plain; charset=utf-8";

void reply(mg_connection* c, int status, const char* type, const std::string& body, const char* extra = "") {
  mg_printf(c,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
            status, mg_get_response_code_text(c, status), type, body.size(), extra);
  if (std::strcmp(mg_get_request_info(c)->request_method, "HEAD") != 0) mg_write(c, body.data(), body.size());
}

// "Basic dXNlcjpwYXNz" -> "user:pass", or nullopt.
std::optional<std::string> basic_credentials(const char* header) {
  if (!header || strncasecmp(header, "Basic ", 6) != 0) return std::nullopt;
  std::string in = header + 6;
  while (!in.empty() && in.back() == ' ') in.pop_back();
  if (in.empty() || in.size() % 4 != 0 || in.size() > 4096) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  for (std::size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) --len;  // DecodeBlock keeps padding
  out.resize(len);
  return out;
}

}  // namespace

std::string HttpServer::render() const {
  std::string out = prometheus::TextSerializer().Serialize(registry_->Collect());
  for (const auto& e : expositions_) e->render(out);
  return out;
}

// Like exporter-toolkit: every path needs the credentials when users are configured. A bcrypt
// check costs tens of milliseconds, so matches are cached (as SHA-256 digests, not passwords).
bool HttpServer::authorized(mg_connection* c) {
  if (web_.users.empty()) return true;
  const auto cred = basic_credentials(mg_get_header(c, "Authorization"));
  const auto colon = cred ? cred->find(':') : std::string::npos;
  if (colon == std::string::npos) return false;
  const std::string user = cred->substr(0, colon), password = cred->substr(colon + 1);
  const auto it = web_.users.find(user);
  // Unknown users cost a bcrypt check too, so timing does not tell which users exist.
  static const std::string kDummy = "$2b$10$ZfiVVFlK0iYCwL8R9Hn6/.5F4oSa8oAH7RjyJydQ9hqRXbMowoXt.";
  const std::string& hash = it == web_.users.end() ? kDummy : it->second;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  const std::string keyed = user + '\0' + password + '\0' + hash;
  SHA256(reinterpret_cast<const unsigned char*>(keyed.data()), keyed.size(), digest);
  const std::string key(reinterpret_cast<char*>(digest), sizeof digest);
  {
    std::lock_guard<std::mutex> g(auth_mu_);
    if (auth_cache_.count(key)) return true;
  }
  if (!bcrypt_matches(hash, password) || it == web_.users.end()) return false;
  std::lock_guard<std::mutex> g(auth_mu_);
  if (auth_cache_.size() >= 1024) auth_cache_.clear();
  auth_cache_.insert(key);
  return true;
}

int HttpServer::handle(mg_connection* c, void* data) {
  auto* self = static_cast<HttpServer*>(data);
  const mg_request_info* ri = mg_get_request_info(c);
  const std::string uri = ri->local_uri ? ri->local_uri : "", method = ri->request_method;
  if (!self->authorized(c)) {
    reply(c, 401, kText, "Unauthorized\n",
          "WWW-Authenticate: Basic realm=\"siteprobe\", charset=\"UTF-8\"\r\n");
    return 1;
  }
  if (uri == "/-/reload") {
    if (!self->reload_)
      reply(c, 403, kText, "Lifecycle API is not enabled (start siteprobe with --web.enable-lifecycle).\n");
    else if (method != "POST" && method != "PUT")
      reply(c, 405, kText, "Only POST or PUT requests allowed.\n", "Allow: POST, PUT\r\n");
    else if (auto errors = self->reload_from_http(); errors.empty())
      reply(c, 200, kText, "Inventory reloaded.\n");
    else {
      std::string body = "Inventory rejected; the previous inventory keeps running:\n";
      for (const auto& e : errors) body += e + "\n";
      reply(c, 500, kText, body);
    }
    return 1;
  }
  if (method != "GET" && method != "HEAD") {
    reply(c, 405, kText, "Only GET and HEAD are allowed.\n", "Allow: GET, HEAD\r\n");
  } else if (uri == "/metrics") {
    reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", self->render());
  } else if (uri == "/-/healthy") {
    reply(c, 200, kText, "siteprobe is Healthy.\n");
  } else if (uri == "/-/ready") {
    if (self->ready_.load())
      reply(c, 200, kText, "siteprobe is Ready.\n");
    else
      reply(c, 503, kText, "siteprobe is not ready.\n");
  } else if (uri == "/") {
    reply(c, 200, "text/html; charset=utf-8",
          "<html><head><title>siteprobe</title></head><body><h1>siteprobe</h1>"
          "<p><a href=\"/metrics\">Metrics</a></p></body></html>\n");
  } else {
    for (const auto& [path, page] : self->pages_)
      if (uri == path) {
        const auto [status, body] = page();
        reply(c, status, kText, body);
        return 1;
      }
    reply(c, 404, kText, "Not found.\n");
  }
  return 1;
}

void HttpServer::enable_reload(uv_loop_t* loop, ReloadFn fn) {
  reload_ = std::move(fn);
  uv_async_init(loop, &async_, [](uv_async_t* a) {
    auto* self = static_cast<HttpServer*>(a->data);
    std::vector<std::promise<std::vector<std::string>>> batch;
    {
      std::lock_guard<std::mutex> g(self->reload_mu_);
      batch.swap(self->pending_);
    }
    if (batch.empty()) return;
    // Requests that arrived together share one reload: they asked for the same file.
    const auto errors = self->reload_();
    for (auto& p : batch) p.set_value(errors);
  });
  async_.data = this;
  async_open_ = true;
}

// On a CivetWeb thread: queue the request, wake the loop, wait for its answer.
std::vector<std::string> HttpServer::reload_from_http() {
  std::future<std::vector<std::string>> f;
  {
    std::lock_guard<std::mutex> g(reload_mu_);
    if (closing_) return {"siteprobe is shutting down"};
    pending_.emplace_back();
    f = pending_.back().get_future();
  }
  uv_async_send(&async_);
  return f.get();
}

std::string HttpServer::start(const std::string& listen, const WebConfig& web) {
  web_ = web;
  // CivetWeb wants "PORT" for all addresses, "IP:PORT" or "[IPV6]:PORT" otherwise; "s" for TLS.
  std::string ports = listen;
  if (!ports.empty() && ports[0] == ':') ports = ports.substr(1);
  if (ports.rfind("0.0.0.0:", 0) == 0) ports = ports.substr(8);
  if (web_.tls()) ports += "s";
  const char* options[] = {
      "listening_ports", ports.c_str(), "request_timeout_ms", "30000", "enable_keep_alive", "no", nullptr};
  // CivetWeb reports bind errors through log_message, on this thread. Its worker threads report
  // per-connection trouble (failed TLS handshakes) the same way; those are dropped.
  static std::string start_error;
  static std::thread::id starter;
  start_error.clear();
  starter = std::this_thread::get_id();
  mg_callbacks cb{};
  cb.log_message = [](const mg_connection*, const char* msg) {
    if (std::this_thread::get_id() == starter && start_error.empty()) start_error = msg;
    return 1;
  };
  // Returning 1 tells CivetWeb the context is fully set up: certificate, key, versions, client CA.
  cb.init_ssl = [](void* ssl_ctx, void* data) {
    auto* self = static_cast<HttpServer*>(data);
    self->tls_error_ = configure_tls(ssl_ctx, self->web_);
    return self->tls_error_.empty() ? 1 : -1;
  };
  const unsigned features = web_.tls() ? MG_FEATURES_TLS : 0;
  if ((mg_init_library(features) & features) != features)
    return "TLS is not available: CivetWeb could not load OpenSSL (libssl.so; see docs/runbook.md#tls)";
  ctx_ = mg_start(&cb, this, options);
  if (!ctx_) {
    const std::string why = !tls_error_.empty()   ? tls_error_
                            : start_error.empty() ? "unknown error"
                                                  : start_error;
    return "cannot listen on " + listen + ": " + why;
  }
  mg_set_request_handler(ctx_, "**", handle, this);
  return "";
}

void HttpServer::stop() {
  {
    // Nobody may wait on the loop past this point: the loop is about to stop serving them.
    std::lock_guard<std::mutex> g(reload_mu_);
    closing_ = true;
    for (auto& p : pending_) p.set_value({"siteprobe is shutting down"});
    pending_.clear();
  }
  if (ctx_) mg_stop(ctx_);
  ctx_ = nullptr;
  if (async_open_) uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  async_open_ = false;
}

}  // namespace siteprobe
