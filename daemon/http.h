// The HTTP endpoint: /metrics, /-/healthy, /-/ready and POST /-/reload, served by libmicrohttpd,
// optionally over TLS (GnuTLS) and behind basic authentication (web_config.h).
//
// Event-driven: a few HTTP threads each run epoll over many connections, so a slow or idle client
// costs a file descriptor, not a thread. Abuse limits (docs/install.md#http-limits):
// - connections: at most kMaxConnections, kMaxPerClient per client address (more are closed at
//   once); a client has
//   kHeaderTimeout from connect (TLS handshake included) to send its request headers, and a
//   connection idle for kIdleTimeout is closed;
// - auth: a wrong credential costs one bcrypt check per window (then it is remembered), and
//   bcrypt checks are rate-limited per client address (IPv6: per /64) and overall (429); they
//   run on one thread of their own (at most one core), the request suspended meanwhile; failures
//   are logged;
// - /-/reload: refuses requests a browser could send cross-site (403) and is rate-limited (429);
//   the request waits suspended while the loop thread reloads (no HTTP thread is held);
// - /metrics: at most kMaxMetricsInFlight answers at a time (503 beyond), each rendered (and
//   gzipped) a part at a time as the client reads it, from one view of the series;
// - an optional Host allow-list (403 for other Host headers: DNS rebinding).
//
// Threading: handlers run on the HTTP threads and touch only the registry (thread-safe in
// prometheus-cpp), the expositions (snapshots under their mutexes, atomic values), the atomic
// ready flag, and the mutex-guarded reload queue and guard state.
// start()/stop() and the reload function run on the loop thread.
#pragma once

#include <prometheus/registry.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/http_guard.h"
#include "daemon/web_config.h"
#include "metrics/series.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace siteprobe {

class HttpServer {
 public:
  // Starts a reload; calls `done` on the loop thread with its errors (empty = ok) when it is over.
  using ReloadFn = std::function<void(std::function<void(const std::vector<std::string>&)> done)>;

  static constexpr unsigned kThreads = 4;
  static constexpr unsigned kMaxConnections = 1024, kMaxPerClient = 64;
  static constexpr std::chrono::seconds kHeaderTimeout{5}, kIdleTimeout{15};
  // /metrics answers at a time (else 503): above the 50 concurrent scrapes of
  // integration.fault_scrapes, far below kMaxConnections.
  static constexpr unsigned kMaxMetricsInFlight = 64;

  HttpServer(std::shared_ptr<prometheus::Registry> registry, const std::atomic<bool>& ready)
      : registry_(std::move(registry)), ready_(ready) {}
  ~HttpServer() { stop(); }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Adds series to /metrics; only before start().
  void add(std::shared_ptr<const Exposition> e) { expositions_.push_back(std::move(e)); }
  // Serves `uri` as plain text from `page` (status code, body); only before start(). `page` runs
  // on HTTP threads.
  using Page = std::function<std::pair<int, std::string>()>;
  void add_page(const std::string& uri, Page page) {
    rich_pages_.emplace_back(uri, [p = std::move(page)](const PageRequest&) {
      auto [status, body] = p();
      return PageAnswer{status, "text/plain; charset=utf-8", std::move(body), {}};
    });
  }
  // A page that sees the query arguments and request headers and sets its content type and
  // headers (the status page); `arg`/`header` return nullptr when absent.
  struct PageRequest {
    std::function<const char*(const char*)> arg, header;
  };
  struct PageAnswer {
    int status;
    std::string type, body;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  using RichPage = std::function<PageAnswer(const PageRequest&)>;
  void add_rich_page(const std::string& uri, RichPage page) {
    rich_pages_.emplace_back(uri, std::move(page));
  }
  // Turns on POST /-/reload (403 without it): `fn` runs on `loop`'s thread, woken by a uv_async_t.
  // Only before start().
  void enable_reload(uv_loop_t* loop, ReloadFn fn);
  // Turns on POST /-/path-test?device=SITE/DEVICE&site=ID... (403 without it, and without
  // enable_reload: it shares the lifecycle flag and the wake-up of the loop). `fn` runs on the
  // loop thread with the devices and sites asked for; the request is answered 202 at once.
  using PathTestFn =
      std::function<void(const std::vector<std::string>& devices, const std::vector<std::string>& sites)>;
  void enable_path_tests(PathTestFn fn) { path_tests_ = std::move(fn); }
  // Binds `listen` ("HOST:PORT", "[V6]:PORT" or ":PORT"), with TLS and basic auth as `web` says;
  // returns "" or an error message.
  std::string start(const std::string& listen, const WebConfig& web = {});
  void stop();

 private:
  enum class Auth { Ok, Denied, Limited, Check };  // Check: needs bcrypt (on the bcrypt thread)
  // One request, from the handler's first call to MHD's completion notice.
  struct Request {
    explicit Request(MHD_Connection* conn) : c(conn) {}
    MHD_Connection* c;
    enum { New, Checking, Checked, Reloading, Reloaded, Answered } state = New;
    bool ok = false;                                // the bcrypt result, once Checked
    std::string client, user, password, hash, key;  // for the check
    bool known_user = false;
    std::shared_ptr<const std::vector<std::string>> reload_errors;  // once Reloaded; null: failed
  };
  // MHD_YES or MHD_NO, or kSuspended: the connection is suspended and `r` must not be touched.
  static constexpr int kSuspended = -1;
  int handle(Request& r, const std::string& uri, const std::string& method);
  Auth authorize(Request& r);
  void check_passwords() noexcept;
  std::string refuse_client_cert(MHD_Connection* c) const;  // "" = the certificate is fine
  bool host_allowed(MHD_Connection* c) const;
  void finish_reloads(std::vector<Request*>& batch,
                      const std::shared_ptr<const std::vector<std::string>>& errors) noexcept;
  void pause_deadline(MHD_Connection* c, bool paused) noexcept;
  void sweep() noexcept;
  // Why a state-changing POST looks like a browser's cross-site request ("" if it does not).
  std::string cross_site(MHD_Connection* c) const;

  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<const Exposition>> expositions_;
  std::vector<std::pair<std::string, RichPage>> rich_pages_;
  const std::atomic<bool>& ready_;
  WebConfig web_;
  std::string cert_pem_, key_pem_, ca_pem_, priorities_;  // MHD keeps pointers into these
  MHD_Daemon* mhd_ = nullptr;
  InFlight metrics_in_flight_{kMaxMetricsInFlight};

  // Auth limits; `guard_mu_` guards them.
  std::mutex guard_mu_;
  ExpiringSet good_{std::chrono::hours(1), 1024};             // SHA-256 of user, password, hash that matched
  ExpiringSet bad_{std::chrono::minutes(1), 4096};            // ... that did not match, for a minute
  RateLimiter auth_per_client_{10, std::chrono::seconds(6)};  // bcrypt checks per address
  RateLimiter auth_global_{20, std::chrono::milliseconds(100)};  // bcrypt checks overall
  RateLimiter auth_log_{1, std::chrono::minutes(1)};             // "too many failed logins" lines

  // Requests suspended until the bcrypt thread has checked their password: the HTTP threads never
  // spend a bcrypt's 50 ms themselves, so answers from the caches never wait behind one.
  std::mutex checks_mu_;
  std::condition_variable checks_cv_;
  std::vector<Request*> checks_;
  bool checking_ = false;
  std::thread checker_;

  // Connections still waiting for their headers, checked by the sweeper thread.
  std::mutex conns_mu_;
  std::condition_variable conns_cv_;
  std::map<MHD_Connection*, std::pair<int, GuardClock::time_point>> waiting_;  // fd, deadline
  bool sweeping_ = false;
  std::thread sweeper_;

  ReloadFn reload_;
  uv_async_t async_{};
  bool async_open_ = false;
  std::mutex reload_mu_;
  RateLimiter reload_limit_{20, std::chrono::seconds(5), 1};  // reloads started over HTTP
  bool closing_ = false;
  std::vector<Request*> pending_;  // reload requests suspended until the loop has reloaded
  PathTestFn path_tests_;
  RateLimiter path_test_limit_{20, std::chrono::seconds(5), 1};
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> path_test_queue_;  // reload_mu_
};

}  // namespace siteprobe
