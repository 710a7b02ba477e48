// The HTTP endpoint: /metrics, /-/healthy, /-/ready and POST /-/reload, served by CivetWeb worker
// threads, optionally over TLS and behind basic authentication (web_config.h).
//
// Threading: handlers run on CivetWeb threads and touch only the registry (thread-safe in
// prometheus-cpp), the atomic ready flag and the mutex-guarded reload queue and password cache.
// start()/stop() and the reload function run on the loop thread.
#pragma once

#include <prometheus/registry.h>
#include <uv.h>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/web_config.h"
#include "probes/series.h"

struct mg_context;
struct mg_connection;

namespace siteprobe {

class HttpServer {
 public:
  using ReloadFn = std::function<std::vector<std::string>()>;  // returns the errors; empty = ok

  HttpServer(std::shared_ptr<prometheus::Registry> registry, const std::atomic<bool>& ready)
      : registry_(std::move(registry)), ready_(ready) {}
  ~HttpServer() { stop(); }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Adds series to /metrics; only before start().
  void add(std::shared_ptr<const probes::Exposition> e) { expositions_.push_back(std::move(e)); }
  // Serves `uri` as plain text from `page` (status code, body); only before start(). `page` runs
  // on HTTP threads.
  using Page = std::function<std::pair<int, std::string>()>;
  void add_page(const std::string& uri, Page page) { pages_.emplace_back(uri, std::move(page)); }
  // Turns on POST /-/reload (403 without it): `fn` runs on `loop`'s thread, woken by a uv_async_t.
  // Only before start().
  void enable_reload(uv_loop_t* loop, ReloadFn fn);
  // Binds `listen` ("HOST:PORT", "[V6]:PORT" or ":PORT"), with TLS and basic auth as `web` says;
  // returns "" or an error message.
  std::string start(const std::string& listen, const WebConfig& web = {});
  void stop();
  // The text exposition of every metric in the registry.
  std::string render() const;

 private:
  static int handle(mg_connection* c, void* self);
  bool authorized(mg_connection* c);
  std::vector<std::string> reload_from_http();

  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<const probes::Exposition>> expositions_;
  std::vector<std::pair<std::string, Page>> pages_;
  const std::atomic<bool>& ready_;
  WebConfig web_;
  mg_context* ctx_ = nullptr;
  std::string tls_error_;

  std::mutex auth_mu_;
  std::set<std::string> auth_cache_;  // SHA-256 of user, password and hash that matched

  ReloadFn reload_;
  uv_async_t async_{};
  bool async_open_ = false;
  std::mutex reload_mu_;
  bool closing_ = false;
  std::vector<std::promise<std::vector<std::string>>> pending_;
};

}  // namespace siteprobe
