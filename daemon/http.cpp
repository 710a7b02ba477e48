#include "daemon/http.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "daemon/http_metrics.h"
#include "daemon/log.h"

namespace siteprobe {
namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
using Headers = std::vector<std::pair<const char*, std::string>>;

const char* header(MHD_Connection* c, const char* name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

// The client's address as text; IPv4 clients of a dual-stack socket without their ::ffff: prefix.
std::string client_address(MHD_Connection* c) {
  const MHD_ConnectionInfo* ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char text[INET6_ADDRSTRLEN] = "?";
  if (!ci || !ci->client_addr) return text;
  if (ci->client_addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(ci->client_addr)->sin_addr, text, sizeof text);
  } else if (ci->client_addr->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(ci->client_addr)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a))
      inet_ntop(AF_INET, a.s6_addr + 12, text, sizeof text);
    else
      inet_ntop(AF_INET6, &a, text, sizeof text);
  }
  return text;
}

// Queues `r` (null: out of memory) with `status`, `type` and `headers`, and releases it.
MHD_Result queue(MHD_Connection* c, MHD_Response* r, unsigned status, const char* type,
                 const Headers& headers) {
  if (!r) return MHD_NO;
  // A header that did not make it (out of memory) could change the meaning of the body
  // (Content-Encoding: gzip): then no answer at all, the connection is closed.
  bool added = MHD_add_response_header(r, "Content-Type", type) == MHD_YES &&
               MHD_add_response_header(r, "Cache-Control", "no-store") == MHD_YES;
  for (const auto& [k, v] : headers) added = added && MHD_add_response_header(r, k, v.c_str()) == MHD_YES;
  const MHD_Result ok = added ? MHD_queue_response(c, status, r) : MHD_NO;
  MHD_destroy_response(r);
  return ok;
}

// Queues a copy of `body`.
MHD_Result reply(MHD_Connection* c, unsigned status, const char* type, const std::string& body,
                 const Headers& headers = {}) {
  return queue(
      c, MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY),
      status, type, headers);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A listening socket for "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses, IPv6 and IPv4), or -1
// with `err` set.
int listen_on(const std::string& listen, std::string& err) {
  std::string host, port;
  if (!listen.empty() && listen[0] == '[') {
    const auto end = listen.find("]:");
    if (end == std::string::npos) return err = "want [V6]:PORT", -1;
    host = listen.substr(1, end - 1), port = listen.substr(end + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) return err = "want HOST:PORT or :PORT", -1;
    host = listen.substr(0, colon), port = listen.substr(colon + 1);
  }
  for (int family : {AF_INET6, AF_INET}) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = host.empty() ? family : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (const int e = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
        e != 0) {
      err = gai_strerror(e);
      if (host.empty()) continue;
      return -1;
    }
    const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1, zero = 0;
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
    if (ok && res->ai_family == AF_INET6 && host.empty())
      ok = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) == 0;
    ok = ok && bind(fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0;
    freeaddrinfo(res);
    if (ok) return fd;
    err = std::strerror(errno);
    if (fd >= 0) close(fd);
    if (!host.empty() || errno != EAFNOSUPPORT) return -1;  // no IPv6 here: try IPv4 only
  }
  return -1;
}

}  // namespace

// Like exporter-toolkit: every path needs the credentials when users are configured. A bcrypt
// check costs tens of milliseconds, so results are cached as SHA-256 digests (never passwords):
// a match for an hour, a mismatch for a minute. Checks of credentials not in either cache are
// rate-limited per client address and overall, so no client can keep the CPUs busy.
HttpServer::Auth HttpServer::authorize(Request& r) {
  if (web_.users.empty()) return Auth::Ok;
  if (r.state == Request::Checked) return r.ok ? Auth::Ok : Auth::Denied;
  if (r.state == Request::Reloaded) return Auth::Ok;  // authorized before it was suspended
  const auto cred = basic_credentials(header(r.c, MHD_HTTP_HEADER_AUTHORIZATION));
  if (!cred) return Auth::Denied;
  const auto colon = cred->find(':');
  r.user = cred->substr(0, colon), r.password = cred->substr(colon + 1);
  const auto it = web_.users.find(r.user);
  r.known_user = it != web_.users.end();
  // Unknown users cost a bcrypt check too, so timing does not tell which users exist.
  static const std::string kDummy = "$2b$10$ZfiVVFlK0iYCwL8R9Hn6/.5F4oSa8oAH7RjyJydQ9hqRXbMowoXt.";
  r.hash = r.known_user ? it->second : kDummy;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  const std::string keyed = r.user + '\0' + r.password + '\0' + r.hash;
  SHA256(reinterpret_cast<const unsigned char*>(keyed.data()), keyed.size(), digest);
  r.key.assign(reinterpret_cast<char*>(digest), sizeof digest);
  const auto now = GuardClock::now();
  std::lock_guard<std::mutex> g(guard_mu_);
  if (good_.hit(r.key, now)) {  // in use: remembered for another hour
    r.password.clear();
    return Auth::Ok;
  }
  if (bad_.contains(r.key, now)) {  // a bad one was paid for once already
    r.password.clear();
    return Auth::Denied;
  }
  if (!take_both(auth_per_client_, client_key(r.client), auth_global_, now)) {
    r.password.clear();
    if (auth_log_.take(r.client, now))
      log(LogLevel::Warn, "too many failed logins; answering 429 without checking",
          {{"client", r.client}, {"user", r.user.substr(0, 64)}});
    return Auth::Limited;
  }
  return Auth::Check;
}

// The bcrypt thread: checks suspended requests' passwords one at a time, then resumes them. At
// stop, the rest are resumed unchecked (denied).
void HttpServer::check_passwords() noexcept {
  std::unique_lock<std::mutex> g(checks_mu_);
  for (;;) {
    checks_cv_.wait(g, [this] { return !checks_.empty() || !checking_; });
    if (checks_.empty()) return;
    Request* r = checks_.front();
    checks_.erase(checks_.begin());
    const bool stopping = !checking_;
    g.unlock();
    // Whatever throws (out of memory), the request is resumed: denied unless it was checked.
    r->ok = false;
    try {
      r->ok = !stopping && bcrypt_matches(r->hash, r->password) && r->known_user;
      r->password.clear();
      if (!stopping) {
        std::lock_guard<std::mutex> gg(guard_mu_);
        (r->ok ? good_ : bad_).insert(r->key, GuardClock::now());
        if (!r->ok)
          log(LogLevel::Warn, "authentication failed",
              {{"client", r->client}, {"user", r->user.substr(0, 64)}});
      }
    } catch (...) {
    }
    r->state = Request::Checked;
    pause_deadline(r->c, false);
    MHD_resume_connection(r->c);
    g.lock();
  }
}

// The checks of client_auth_type that need the CA, and client_allowed_sans. GnuTLS already refused
// handshakes without a certificate where one is required (on_connection below).
std::string HttpServer::refuse_client_cert(MHD_Connection* c) const {
  const std::string& type = web_.client_auth_type;
  if (!web_.tls() || type == "NoClientCert") return "";
  const MHD_ConnectionInfo* ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (!ci) return "no TLS session";
  auto* session = static_cast<gnutls_session_t>(ci->tls_session);
  unsigned n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &n);
  if (n == 0) return type.rfind("Require", 0) == 0 ? "no client certificate" : "";
  if (type.find("Verify") == std::string::npos) return "";
  unsigned status = 0;
  if (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0)
    return "client certificate not signed by client_ca_file";
  if (web_.client_allowed_sans.empty()) return "";
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) < 0) return "out of memory";
  std::string why = "no SAN of the client certificate is in client_allowed_sans";
  if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0)
    for (unsigned i = 0; why.size(); ++i) {
      char buf[1024];
      std::size_t size = sizeof buf;
      const int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, nullptr);
      if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
      if (t < 0) continue;
      std::string san(buf, size);
      char text[INET6_ADDRSTRLEN];
      if (t == GNUTLS_SAN_IPADDRESS && inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, text, sizeof text))
        san = text;
      const auto& ok = web_.client_allowed_sans;
      if (std::find(ok.begin(), ok.end(), san) != ok.end()) why.clear();
    }
  gnutls_x509_crt_deinit(crt);
  return why;
}

// Against DNS rebinding: with --web.allowed-hosts, the Host header (without its port) must be one
// of them.
bool HttpServer::host_allowed(MHD_Connection* c) const {
  if (web_.allowed_hosts.empty()) return true;
  std::string host = header(c, MHD_HTTP_HEADER_HOST) ? header(c, MHD_HTTP_HEADER_HOST) : "";
  if (!host.empty() && host[0] == '[')
    host = host.substr(1, host.find(']') - 1);
  else if (std::count(host.begin(), host.end(), ':') == 1)
    host = host.substr(0, host.find(':'));
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char ch) { return std::tolower(ch); });
  const auto& ok = web_.allowed_hosts;
  return std::find(ok.begin(), ok.end(), host) != ok.end();
}

int HttpServer::handle(Request& r, const std::string& uri, const std::string& method) {
  MHD_Connection* c = r.c;
  const std::string& client = r.client;
  if (r.state == Request::New) {
    r.client = client_address(c);
    if (const std::string why = refuse_client_cert(c); !why.empty()) {
      log(LogLevel::Debug, "client certificate refused", {{"client", client}, {"reason", why}});
      return MHD_NO;  // closes the connection, as a failed handshake would
    }
    if (!host_allowed(c)) return reply(c, 403, kText, "Host not allowed (see --web.allowed-hosts).\n");
  }
  switch (authorize(r)) {
    case Auth::Ok:
      break;
    case Auth::Check: {
      // From the suspend on, `r` is the bcrypt thread's until it resumes the connection: nobody on
      // this thread may touch it again (the caller only sees kSuspended).
      std::lock_guard<std::mutex> g(checks_mu_);
      if (!checking_) return MHD_NO;
      checks_.push_back(&r);  // first: if it throws, nothing is suspended
      r.state = Request::Checking;
      pause_deadline(c, true);
      MHD_suspend_connection(c);
      checks_cv_.notify_one();
      return kSuspended;
    }
    case Auth::Denied:
      return reply(c, 401, kText, "Unauthorized\n",
                   {{"WWW-Authenticate", "Basic realm=\"siteprobe\", charset=\"UTF-8\""}});
    case Auth::Limited: {
      std::lock_guard<std::mutex> g(guard_mu_);
      const long s = std::max(auth_per_client_.retry_after(client_key(client), GuardClock::now()), 1L);
      return reply(c, 429, kText, "Too many failed logins; try again later.\n",
                   {{"Retry-After", std::to_string(s)}});
    }
  }
  if (uri == "/-/reload") {
    if (!reload_)
      return reply(c, 403, kText,
                   "Lifecycle API is not enabled (start siteprobe with --web.enable-lifecycle).\n");
    if (method != "POST" && method != "PUT")
      return reply(c, 405, kText, "Only POST or PUT requests allowed.\n", {{"Allow", "POST, PUT"}});
    if (auto why = cross_site(c); !why.empty()) return reply(c, 403, kText, why);
    if (r.state != Request::Reloaded) {
      // The reload runs on the loop thread: the connection waits suspended, not an HTTP thread.
      std::lock_guard<std::mutex> g(reload_mu_);
      if (closing_)
        return reply(
            c, 500, kText,
            "Inventory rejected; the previous inventory keeps running:\nsiteprobe is shutting down\n");
      const auto now = GuardClock::now();
      if (pending_.empty() && !reload_limit_.take("", now)) {  // joining a queued reload is free
        const long s = std::max(reload_limit_.retry_after("", now), 1L);
        return reply(c, 429, kText, "Too many reloads; try again later.\n",
                     {{"Retry-After", std::to_string(s)}});
      }
      const bool first = pending_.empty();
      pending_.push_back(&r);  // first: if it throws, nothing is suspended
      r.state = Request::Reloading;
      pause_deadline(c, true);
      MHD_suspend_connection(c);
      if (first)
        if (const int e = uv_async_send(&async_); e != 0)  // the loop would never answer: answer here
          finish_reloads(pending_, std::make_shared<const std::vector<std::string>>(std::vector<std::string>{
                                       std::string("cannot wake the main loop: ") + uv_strerror(e)}));
      return kSuspended;
    }
    if (!r.reload_errors)
      return reply(c, 500, kText,
                   "Inventory rejected; the previous inventory keeps running:\nreload failed\n");
    if (r.reload_errors->empty()) return reply(c, 200, kText, "Inventory reloaded.\n");
    std::string body = "Inventory rejected; the previous inventory keeps running:\n";
    for (const auto& e : *r.reload_errors) body += e + "\n";
    return reply(c, 500, kText, body);
  }
  if (uri == "/-/path-test") {
    if (!reload_ || !path_tests_)
      return reply(c, 403, kText,
                   "Lifecycle API is not enabled (start siteprobe with --web.enable-lifecycle).\n");
    if (method != "POST") return reply(c, 405, kText, "Only POST requests allowed.\n", {{"Allow", "POST"}});
    if (auto why = cross_site(c); !why.empty()) return reply(c, 403, kText, why);
    std::pair<std::vector<std::string>, std::vector<std::string>> ask;
    MHD_get_connection_values(
        c, MHD_GET_ARGUMENT_KIND,
        [](void* cls, MHD_ValueKind, const char* k, const char* v) noexcept -> MHD_Result {
          auto* a = static_cast<decltype(ask)*>(cls);
          if (!v || a->first.size() + a->second.size() >= 1000) return MHD_YES;
          try {
            if (std::strcmp(k, "device") == 0) a->first.emplace_back(v);
            if (std::strcmp(k, "site") == 0) a->second.emplace_back(v);
          } catch (...) {
          }
          return MHD_YES;
        },
        &ask);
    if (ask.first.empty() && ask.second.empty())
      return reply(c, 400, kText, "Name what to test: ?device=SITE/DEVICE or ?site=SITE (repeatable).\n");
    const std::size_t n = ask.first.size() + ask.second.size();
    {
      std::lock_guard<std::mutex> g(reload_mu_);
      if (closing_) return reply(c, 503, kText, "siteprobe is shutting down.\n");
      const auto now = GuardClock::now();
      if (!path_test_limit_.take("", now))
        return reply(c, 429, kText, "Too many path-test requests; try again later.\n",
                     {{"Retry-After", std::to_string(std::max(path_test_limit_.retry_after("", now), 1L))}});
      path_test_queue_.push_back(std::move(ask));
    }
    if (const int e = uv_async_send(&async_); e != 0)
      return reply(c, 500, kText, std::string("cannot wake the main loop: ") + uv_strerror(e) + "\n");
    return reply(c, 202, kText,
                 "Path tests queued (" + std::to_string(n) +
                     " asked). They run one at a time per district, under global.path_test_max_kbps; "
                     "results: GET /path-tests, /metrics (siteprobe_path_test_*) and the log.\n");
  }
  if (method != "GET" && method != "HEAD")
    return reply(c, 405, kText, "Only GET and HEAD are allowed.\n", {{"Allow", "GET, HEAD"}});
  if (uri == "/metrics") {
    // Each answer holds a view of the series until the client has read it: a few at a time only.
    InFlight::Slot slot = metrics_in_flight_.acquire();
    if (!slot)
      return reply(c, 503, kText, "Too many scrapes in flight; try again later.\n", {{"Retry-After", "1"}});
    bool gzip = false;
    MHD_Response* resp =
        metrics_response(prometheus::TextSerializer().Serialize(registry_->Collect()), expositions_,
                         std::move(slot), accepts_gzip(header(c, MHD_HTTP_HEADER_ACCEPT_ENCODING)), gzip);
    Headers h = {{"Vary", "Accept-Encoding"}};
    if (gzip) h.emplace_back("Content-Encoding", "gzip");
    return queue(c, resp, 200, "text/plain; version=0.0.4; charset=utf-8", h);
  }
  if (uri == "/-/healthy") return reply(c, 200, kText, "siteprobe is Healthy.\n");
  if (uri == "/-/ready")
    return ready_.load() ? reply(c, 200, kText, "siteprobe is Ready.\n")
                         : reply(c, 503, kText, "siteprobe is not ready.\n");
  for (const auto& [path, page] : rich_pages_)
    if (uri == path) {
      const PageRequest req{
          [c](const char* k) { return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k); },
          [c](const char* k) { return header(c, k); }};
      const PageAnswer a = page(req);
      Headers h;
      for (const auto& [k, v] : a.headers) h.emplace_back(k.c_str(), v);
      return reply(c, static_cast<unsigned>(a.status), a.type.c_str(), a.body, h);
    }
  if (uri == "/")
    return reply(c, 200, "text/html; charset=utf-8",
                 "<html><head><title>siteprobe</title></head><body><h1>siteprobe</h1>"
                 "<p><a href=\"/metrics\">Metrics</a></p></body></html>\n");
  return reply(c, 404, kText, "Not found.\n");
}

// A browser marks what it sends with Origin or Sec-Fetch-*, and a form post has a form content type;
// it cannot add a custom header cross-site without a CORS preflight, which fails here.
std::string HttpServer::cross_site(MHD_Connection* c) const {
  const char* type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
  const std::string t = type ? std::string(type).substr(0, std::string(type).find(';')) : "";
  const bool form = strcasecmp(t.c_str(), "application/x-www-form-urlencoded") == 0 ||
                    strcasecmp(t.c_str(), "multipart/form-data") == 0 ||
                    strcasecmp(t.c_str(), "text/plain") == 0;
  if (!header(c, "X-Siteprobe-Reload") && (form || header(c, "Origin") || header(c, "Sec-Fetch-Site")))
    return "Refused: this looks like a browser request. Send the header \"X-Siteprobe-Reload: 1\" "
           "(curl -X POST -H 'X-Siteprobe-Reload: 1' URL).\n";
  return "";
}

void HttpServer::enable_reload(uv_loop_t* loop, ReloadFn fn) {
  const int rc = uv_async_init(loop, &async_, [](uv_async_t* a) noexcept {
    auto* self = static_cast<HttpServer*>(a->data);
    std::vector<Request*> batch;  // requests arriving meanwhile wait for a reload of their own
    decltype(self->path_test_queue_) tests;
    {
      std::lock_guard<std::mutex> g(self->reload_mu_);
      batch.swap(self->pending_);
      tests.swap(self->path_test_queue_);
    }
    for (const auto& [devices, sites] : tests) try {
        self->path_tests_(devices, sites);
      } catch (const std::exception& e) {
        log(LogLevel::Error, "path test request failed", {{"error", e.what()}});
      }
    if (batch.empty()) return;
    // Requests that arrived together share one reload: they asked for the same file. Every waiting
    // request is resumed, whatever the reload throws (no errors at all: "reload failed").
    auto shared = std::make_shared<std::vector<Request*>>(std::move(batch));
    try {
      self->reload_([self, shared](const std::vector<std::string>& errors) {
        std::shared_ptr<const std::vector<std::string>> e;
        try {
          e = std::make_shared<const std::vector<std::string>>(errors);
        } catch (...) {
        }
        self->finish_reloads(*shared, e);
      });
    } catch (...) {
      self->finish_reloads(*shared, nullptr);
    }
  });
  if (rc != 0) {  // /-/reload stays off (403)
    log(LogLevel::Error, "cannot enable POST /-/reload", {{"error", uv_strerror(rc)}});
    return;
  }
  reload_ = std::move(fn);
  async_.data = this;
  async_open_ = true;
}

// The header timeout of a suspended connection waits (the time it spends queued for a bcrypt check
// or a reload is not the client's); once resumed, the rest of its request is due within
// kHeaderTimeout.
void HttpServer::pause_deadline(MHD_Connection* c, bool paused) noexcept {
  std::lock_guard<std::mutex> g(conns_mu_);
  const auto it = waiting_.find(c);
  if (it != waiting_.end())
    it->second.second = paused ? GuardClock::time_point::max() : GuardClock::now() + kHeaderTimeout;
}

// Answers the suspended reload requests of `batch` with `errors` (null: the reload failed).
void HttpServer::finish_reloads(std::vector<Request*>& batch,
                                const std::shared_ptr<const std::vector<std::string>>& errors) noexcept {
  for (Request* r : batch) {
    r->reload_errors = errors;
    r->state = Request::Reloaded;
    pause_deadline(r->c, false);
    MHD_resume_connection(r->c);
  }
  batch.clear();
}

// The header timeout: libmicrohttpd's own timeout is an idle timeout, which a client dripping one
// byte now and then never hits. Shutting the socket down (not closing it: the fd stays MHD's)
// makes MHD close the connection.
void HttpServer::sweep() noexcept {
  std::unique_lock<std::mutex> g(conns_mu_);
  while (sweeping_) {
    conns_cv_.wait_for(g, std::chrono::milliseconds(500));
    const auto now = GuardClock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (now < it->second.second) {
        ++it;
        continue;
      }
      shutdown(it->second.first, SHUT_RDWR);
      it = waiting_.erase(it);
    }
  }
}

std::string HttpServer::start(const std::string& listen, const WebConfig& web) {
  web_ = web;
  std::string err;
  const int fd = listen_on(listen, err);
  if (fd < 0) return "cannot listen on " + listen + ": " + err;
  unsigned flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  // Request handler: first call once the headers are in; every request is answered right then
  // (a body, if any, is discarded with the connection).
  // Every callback is noexcept: an exception escaping into libmicrohttpd would abort the daemon.
  MHD_AccessHandlerCallback on_request = [](void* self, MHD_Connection* c, const char* url,
                                            const char* method, const char*, const char*,
                                            std::size_t* upload_size, void** req) noexcept -> MHD_Result {
    try {
      auto* s = static_cast<HttpServer*>(self);
      auto* r = static_cast<Request*>(*req);
      if (!r) {
        *req = r = new Request(c);  // NOLINT(cppcoreguidelines-owning-memory): freed in on_completed
      } else if (*upload_size) {    // a body: not used by any page, discarded
        *upload_size = 0;
        return MHD_YES;
      }
      if (r->state != Request::New && r->state != Request::Checked && r->state != Request::Reloaded)
        return MHD_YES;
      const int result = s->handle(*r, url, method);
      if (result == kSuspended) return MHD_YES;  // `r` may already be the bcrypt thread's again
      r->state = Request::Answered;
      {  // the header timeout ends with the answer (a body, even after a bcrypt check, is under it)
        std::lock_guard<std::mutex> g(s->conns_mu_);
        s->waiting_.erase(c);
      }
      return static_cast<MHD_Result>(result);
    } catch (const std::exception& e) {
      log(LogLevel::Error, "http request failed", {{"error", e.what()}});
    } catch (...) {
    }
    return MHD_NO;  // closes the connection
  };
  MHD_RequestCompletedCallback on_completed = [](void* self, MHD_Connection* c, void** req,
                                                 MHD_RequestTerminationCode code) noexcept {
    delete static_cast<Request*>(*req);  // NOLINT(cppcoreguidelines-owning-memory)
    *req = nullptr;
    if (code != MHD_REQUEST_TERMINATED_COMPLETED_OK) return;  // the connection is closing
    // Keep-alive: the next request's headers are due within kHeaderTimeout too. (If the connection
    // closes instead, MHD_CONNECTION_NOTIFY_CLOSED drops the entry before the fd is closed.)
    auto* s = static_cast<HttpServer*>(self);
    const MHD_ConnectionInfo* sock = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    std::lock_guard<std::mutex> g(s->conns_mu_);
    try {
      if (sock) s->waiting_[c] = {sock->connect_fd, GuardClock::now() + kHeaderTimeout};
    } catch (...) {
    }
  };
  MHD_NotifyConnectionCallback on_connection = [](void* self, MHD_Connection* c, void**,
                                                  MHD_ConnectionNotificationCode code) noexcept {
    auto* s = static_cast<HttpServer*>(self);
    std::lock_guard<std::mutex> g(s->conns_mu_);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
      s->waiting_.erase(c);  // before MHD closes the fd: the sweeper never touches a reused fd
      return;
    }
    const MHD_ConnectionInfo* sock = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    try {
      if (sock) s->waiting_[c] = {sock->connect_fd, GuardClock::now() + kHeaderTimeout};
    } catch (...) {  // out of memory: no header timeout for this one, the idle timeout still applies
    }
    // libmicrohttpd asks for a client certificate only when given a CA, and never requires one.
    const std::string& type = s->web_.client_auth_type;
    const MHD_ConnectionInfo* tls = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (tls && tls->tls_session && type != "NoClientCert")
      gnutls_certificate_server_set_request(
          static_cast<gnutls_session_t>(tls->tls_session),
          type.rfind("Require", 0) == 0 ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST);
  };
  MHD_LogCallback on_log = [](void*, const char* fmt, va_list ap) noexcept {
    try {
      char buf[512];
      std::vsnprintf(buf, sizeof buf, fmt, ap);
      std::string msg = buf;
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      log(LogLevel::Debug, "http", {{"detail", msg}});
    } catch (...) {
    }
  };
  std::vector<MHD_OptionItem> opts = {
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(on_log), this},  // first, as MHD wants
      {MHD_OPTION_LISTEN_SOCKET, fd, nullptr},
      {MHD_OPTION_THREAD_POOL_SIZE, kThreads, nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, nullptr},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxPerClient, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeout.count(), nullptr},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(on_connection), this},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(on_completed), this},
  };
  if (web_.tls()) {
    flags |= MHD_USE_TLS;
    cert_pem_ = read_file(web_.cert_file), key_pem_ = read_file(web_.key_file);
    priorities_ = tls_priorities(web_);
    opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, cert_pem_.data()});
    opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, key_pem_.data()});
    opts.push_back({MHD_OPTION_HTTPS_PRIORITIES, 0, priorities_.data()});
    if (!web_.client_ca_file.empty()) {
      ca_pem_ = read_file(web_.client_ca_file);
      opts.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, ca_pem_.data()});
    }
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});
  mhd_ = MHD_start_daemon(flags, 0, nullptr, nullptr, on_request, this, MHD_OPTION_ARRAY, opts.data(),
                          MHD_OPTION_END);
  if (!mhd_) {
    close(fd);
    return "cannot listen on " + listen +
           ": libmicrohttpd did not start (run with --log.level debug for why)";
  }
  sweeping_ = checking_ = true;
  sweeper_ = std::thread([this] { sweep(); });
  checker_ = std::thread([this] { check_passwords(); });
  return "";
}

void HttpServer::stop() {
  {
    // Nobody may wait on the loop past this point: the loop is about to stop serving them.
    std::lock_guard<std::mutex> g(reload_mu_);
    closing_ = true;
    std::shared_ptr<const std::vector<std::string>> errors;
    try {
      errors = std::make_shared<const std::vector<std::string>>(
          std::vector<std::string>{"siteprobe is shutting down"});
    } catch (...) {
    }
    finish_reloads(pending_, errors);  // MHD may not stop with a connection suspended
  }
  if (sweeper_.joinable()) {
    {
      std::lock_guard<std::mutex> g(conns_mu_);
      sweeping_ = false;
    }
    conns_cv_.notify_all();
    sweeper_.join();
  }
  if (checker_.joinable()) {  // resumes every suspended request: MHD may not stop with any
    {
      std::lock_guard<std::mutex> g(checks_mu_);
      checking_ = false;
    }
    checks_cv_.notify_all();
    checker_.join();
  }
  if (mhd_) MHD_stop_daemon(mhd_);  // closes the listening socket too
  mhd_ = nullptr;
  if (async_open_) uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  async_open_ = false;
}

}  // namespace siteprobe
