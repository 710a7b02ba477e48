#include "probes/sip.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <unordered_map>
#include <vector>

#include "metrics/families.h"
#include "probes/icmp.h"
#include "probes/registry.h"
#include "probes/service.h"
#include "util/net.h"
#include "util/uv_handle.h"

namespace siteprobe::probes {

// ---- libuv shell -------------------------------------------------------------------------------
namespace {

const std::vector<std::string> kKinds = {"timeout", "refused", "unreachable", "malformed", "closed", "other"};
int kind_index(const char* k) {
  for (std::size_t i = 0; i < kKinds.size(); ++i)
    if (kKinds[i] == k) return static_cast<int>(i);
  return static_cast<int>(kKinds.size()) - 1;
}

std::string hex(std::uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::int64_t now_ns() {
  return static_cast<std::int64_t>(uv_hrtime());
}

class SipProber;

// One SIP-over-TCP probe: connect, send, read until the final response. Freed in its close callback;
// callbacks that arrive after close() started (UV_ECANCELED) do nothing.
struct Conn {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_write_t write{};
  SipProber* owner = nullptr;
  std::uint64_t id = 0;
  std::string out;
  SipStream in;
  bool closing = false;
  void close() {
    if (closing) return;
    closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) noexcept {
      // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): libuv's (through tcp.data) until this C callback
      delete static_cast<Conn*>(reinterpret_cast<uv_tcp_t*>(h)->data);
    });
  }
};

class SipProber final : public Prober {
 public:
  SipProber(uv_loop_t* loop, prometheus::Registry& reg, const int fd[2], const int port[2],
            std::uint64_t cookie)
      : loop_(loop),
        cookie_(cookie),
        engine_(
            true, kKinds,
            [this](std::uint64_t id, const ServiceCheck& c, const sockaddr_storage& to) { start(id, c, to); },
            [this](std::uint64_t id) { stop(id); }),
        timer_(loop, engine_),
        invalid_(prometheus::BuildCounter()
                     .Name("siteprobe_sip_invalid_responses_total")
                     .Help(help("siteprobe_sip_invalid_responses_total"))
                     .Register(reg)),
        malformed_(invalid_.Add({{"reason", "malformed"}})),
        unmatched_(invalid_.Add({{"reason", "unmatched"}})) {
    engine_.set_resend(500000000, [this](std::uint64_t id) { send_udp(id); });
    engine_.set_drain([this] {
      on_readable(0);
      on_readable(1);
    });
    for (int i = 0; i < 2; ++i) {
      fd_[i] = fd[i];
      port_[i] = port[i];
      if (fd_[i] < 0) continue;
      int rc = poll_[i].init([&](uv_poll_t* h) { return uv_poll_init(loop_, h, fd_[i]); });
      if (rc == 0) {
        poll_[i].get()->data = this;
        rc = start_poll(i);
      }
      if (rc != 0) error_ = std::string("cannot watch the SIP UDP socket: ") + uv_strerror(rc);
    }
  }
  ~SipProber() override { close(); }
  const std::string& error() const { return error_; }  // set if a socket cannot be watched

  void on_check(CheckFn fn) { engine_.on_check(std::move(fn)); }
  std::shared_ptr<const Exposition> exposition() const override { return engine_.exposition(); }

  void set_targets(const Config&, const std::vector<Target>& targets) override {
    std::vector<ServiceCheck> checks;
    for (const auto& t : targets) {
      const SipSettings& s = t.device->sip;
      if (s.enabled)
        checks.push_back({t.key, "sip", label_map(t), s.port,
                          capped_interval(s.interval, s.timeout, t.max_interval), s.timeout,
                          s.transport == "tcp", true});
    }
    local_.clear();
    engine_.set_checks(checks, now_ns());
    timer_.arm();
  }
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    engine_.set_address(key, addr);
  }
  void close() override {
    for (auto& [id, p] : pending_)
      if (p.conn) p.conn->close();
    pending_.clear();
    by_call_id_.clear();
    for (int i = 0; i < 2; ++i) {
      poll_[i].reset();
      if (fd_[i] >= 0) ::close(fd_[i]);
      fd_[i] = -1;
    }
    timer_.close();
  }

  // Called by Conn callbacks.
  void tcp_connected(Conn* c, int status);
  void tcp_read(Conn* c, ssize_t n, const uv_buf_t* buf);

 private:
  struct Pending {
    std::string call_id, branch, dest;  // dest: address and port, for ICMP errors
    sockaddr_storage to{};
    Conn* conn = nullptr;  // TCP only
    std::string request;   // UDP: kept for retransmissions
  };

  // libuv stops a poll handle that reports an error (a pending ICMP error, say); the callback
  // starts it again, since the socket stays usable.
  int start_poll(int i) {
    return uv_poll_start(poll_[i].get(), UV_READABLE, [](uv_poll_t* h, int, int) noexcept {
      auto* self = static_cast<SipProber*>(h->data);
      const int v6 = h == self->poll_[1].get();
      self->on_readable(v6);
      self->timer_.arm();
      if (!uv_is_active(reinterpret_cast<uv_handle_t*>(h)) && self->poll_[v6])
        uv_must(self->start_poll(v6), "uv_poll_start");
    });
  }

  static std::string dest_key(const sockaddr_storage& a) {
    int port = 0;
    return net::ip_text(a, &port) + "|" + std::to_string(port);
  }

  // Our address as seen by `to`: the source address the kernel picks for it, cached per target.
  std::string local_for(const sockaddr_storage& to) {
    const std::string k = net::ip_text(to);
    auto it = local_.find(k);
    if (it != local_.end()) return it->second;
    std::string local = to.ss_family == AF_INET6 ? "::1" : "127.0.0.1";
    const int fd = socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      sockaddr_storage a{};
      socklen_t al = sizeof a;
      const socklen_t tl = to.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      if (connect(fd, reinterpret_cast<const sockaddr*>(&to), tl) == 0 &&
          getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al) == 0)
        local = net::ip_text(a);
      ::close(fd);
    }
    return local_[k] = local;
  }

  void start(std::uint64_t id, const ServiceCheck& c, const sockaddr_storage& to) {
    Pending& p = pending_[id];
    p.call_id = hex(cookie_) + "." + hex(id) + "@siteprobe";
    p.branch = "z9hG4bK" + hex(cookie_ ^ 0x5a5a5a5a5a5a5a5aULL) + hex(id);
    p.to = to;
    if (!c.tcp) {
      const int v6 = to.ss_family == AF_INET6;
      int port = 0;
      p.dest = dest_key(to);
      p.request = build_sip_options({net::ip_text(to, &port), port, false, local_for(to), port_[v6],
                                     p.call_id, p.branch, hex(cookie_ + id)});
      by_call_id_[p.call_id] = id;
      by_dest_[p.dest] = id;
      send_udp(id);
      return;
    }
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): the probe and libuv hold it until close()
    auto* conn = new Conn;
    conn->owner = this;
    conn->id = id;
    conn->tcp.data = conn;
    conn->connect.data = conn;
    conn->write.data = conn;
    if (const int rc = uv_tcp_init(loop_, &conn->tcp)) {  // not registered with the loop: free it now
      delete conn;                                        // NOLINT(cppcoreguidelines-owning-memory)
      fail(id, error_kind(rc));
      return;
    }
    p.conn = conn;
    const int rc = uv_tcp_connect(&conn->connect, &conn->tcp, reinterpret_cast<const sockaddr*>(&to),
                                  [](uv_connect_t* r, int status) noexcept {
                                    auto* cn = static_cast<Conn*>(r->data);
                                    if (!cn->closing) cn->owner->tcp_connected(cn, status);
                                  });
    if (rc != 0) fail(id, error_kind(rc));
  }

  void send_udp(std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.conn) return;
    const Pending& p = it->second;
    const int fd = fd_[p.to.ss_family == AF_INET6];
    const socklen_t tl = p.to.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (fd < 0 ||
        sendto(fd, p.request.data(), p.request.size(), 0, reinterpret_cast<const sockaddr*>(&p.to), tl) < 0) {
      const int e = errno;
      // A previous ICMP error may surface here; a closed port is still "refused".
      fail(id, e == ECONNREFUSED                       ? "refused"
               : e == EHOSTUNREACH || e == ENETUNREACH ? "unreachable"
                                                       : "other");
    }
  }

  // Stops the I/O of a probe; the engine records the outcome.
  void stop(std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending& p = it->second;
    if (p.conn) p.conn->close();
    if (!p.call_id.empty()) by_call_id_.erase(p.call_id);
    if (!p.dest.empty()) {
      auto d = by_dest_.find(p.dest);
      if (d != by_dest_.end() && d->second == id) by_dest_.erase(d);
    }
    pending_.erase(it);
  }
  void fail(std::uint64_t id, const char* kind) {
    stop(id);
    engine_.finish(id, kind_index(kind), 0, now_ns());
  }
  void answered(std::uint64_t id, int code) {
    stop(id);
    engine_.finish(id, ServiceEngine::kAnswered, code, now_ns());
  }

  // A response (whole datagram, or one message of a stream) for probe `id`; false if it is not ours.
  bool matches(std::uint64_t id, const SipResponse& r) const {
    auto it = pending_.find(id);
    return it != pending_.end() && r.branch == it->second.branch && ieq(r.cseq_method, "OPTIONS");
  }

  void on_datagram(const char* data, std::size_t len, bool truncated, const sockaddr_storage& from) {
    SipResponse r;
    SipParse res = parse_sip_response({data, len}, r);
    if (truncated) res = SipParse::Malformed;  // larger than any response we accept
    auto it = by_call_id_.find(r.call_id);
    const bool ours = it != by_call_id_.end() && same_address(pending_.at(it->second).to, from);
    if (res != SipParse::Ok) {  // a truncated datagram (Incomplete) is malformed too
      if (ours)
        fail(it->second, "malformed");
      else
        malformed_.Increment();
      return;
    }
    if (!ours || !matches(it->second, r)) {
      unmatched_.Increment();
      return;
    }
    if (r.code < 200)
      engine_.provisional(it->second);
    else
      answered(it->second, r.code);
  }

  void on_readable(int v6) {
    const int fd = fd_[v6];
    if (fd < 0) return;
    // ICMP errors for our requests (port unreachable = refused), from the error queue (IP_RECVERR).
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage to{};
      char ctrl[512];
      char b[1];
      iovec iov{b, sizeof b};
      msghdr m{};
      m.msg_name = &to;
      m.msg_namelen = sizeof to;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = ctrl;
      m.msg_controllen = sizeof ctrl;
      if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
              (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
          continue;
        sock_extended_err ee;
        std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
        auto it = by_dest_.find(dest_key(to));
        if (it != by_dest_.end())
          fail(it->second, ee.ee_errno == ECONNREFUSED                                 ? "refused"
                           : ee.ee_errno == EHOSTUNREACH || ee.ee_errno == ENETUNREACH ? "unreachable"
                                                                                       : "other");
      }
    }
    for (int i = 0; i < 256; ++i) {  // bounded, so the loop is never starved
      sockaddr_storage from{};
      iovec iov{rx_.data(), rx_.size()};
      msghdr m{};
      m.msg_name = &from;
      m.msg_namelen = sizeof from;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      const ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        continue;  // a pending ICMP error reported by recvmsg; the error queue has the details
      }
      on_datagram(rx_.data(), static_cast<std::size_t>(n), (m.msg_flags & MSG_TRUNC) != 0, from);
    }
  }

  uv_loop_t* loop_;
  std::uint64_t cookie_;
  ServiceEngine engine_;
  EngineTimer<ServiceEngine> timer_;
  prometheus::Family<prometheus::Counter>& invalid_;
  prometheus::Counter &malformed_, &unmatched_;
  int fd_[2] = {-1, -1}, port_[2] = {0, 0};
  UvHandle<uv_poll_t> poll_[2];
  std::string error_;
  // Receive buffer of the UDP socket and of every TCP read (loop thread only, one read at a time;
  // on the heap, not thread_local: the HTTP threads would each get one).
  std::vector<char> rx_ = std::vector<char>(65536);
  static constexpr unsigned kTcpRead = 16384;  // bytes per TCP read
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::unordered_map<std::string, std::uint64_t> by_call_id_, by_dest_;
  std::unordered_map<std::string, std::string> local_;
};

void SipProber::tcp_connected(Conn* c, int status) {
  if (status < 0) {
    fail(c->id, error_kind(status));
    return;
  }
  sockaddr_storage local{};
  int len = sizeof local;
  if (const int rc = uv_tcp_getsockname(&c->tcp, reinterpret_cast<sockaddr*>(&local), &len)) {
    fail(c->id, error_kind(rc));
    return;
  }
  const Pending& p = pending_[c->id];
  int port = 0, lport = 0;
  const std::string host = net::ip_text(p.to, &port), lhost = net::ip_text(local, &lport);
  c->out = build_sip_options({host, port, true, lhost, lport, p.call_id, p.branch, hex(cookie_ + c->id)});
  uv_buf_t buf = uv_buf_init(c->out.data(), static_cast<unsigned>(c->out.size()));
  int rc = uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
                    [](uv_write_t* w, int st) noexcept {
                      auto* cn = static_cast<Conn*>(w->data);
                      if (!cn->closing && st < 0) cn->owner->tcp_read(cn, st, nullptr);
                    });
  if (rc == 0)
    rc = uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, std::size_t, uv_buf_t* b) noexcept {
          // The prober's receive buffer: tcp_read consumes it before the loop reads again.
          auto& rx = static_cast<Conn*>(h->data)->owner->rx_;
          *b = uv_buf_init(rx.data(), kTcpRead);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) noexcept {
          auto* cn = static_cast<Conn*>(s->data);
          if (!cn->closing) cn->owner->tcp_read(cn, n, b);
        });
  if (rc != 0) fail(c->id, error_kind(rc));
}

void SipProber::tcp_read(Conn* c, ssize_t n, const uv_buf_t* buf) {
  if (n < 0) {
    fail(c->id, error_kind(static_cast<int>(n)));
    return;
  }
  c->in.append({buf->base, static_cast<std::size_t>(n)});
  for (;;) {
    SipResponse r;
    const SipParse res = c->in.next(r);
    if (res == SipParse::Incomplete) return;
    if (res != SipParse::Ok || r.call_id != pending_[c->id].call_id || !matches(c->id, r)) {
      fail(c->id, "malformed");
      return;
    }
    if (r.code >= 200) {
      answered(c->id, r.code);
      return;
    }
    engine_.provisional(c->id);
  }
}

// Opens and binds a UDP socket for `af`; returns it and its port, or -1 (errno set).
int open_udp(int af, int& port) {
  const int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1, rcvbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (af == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof one);
  } else {
    setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof one);
  }
  sockaddr_storage a{};
  a.ss_family = static_cast<sa_family_t>(af);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a),
           af == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  socklen_t al = sizeof a;  // the port for Via and Contact
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  net::ip_text(a, &port);
  return fd;
}

}  // namespace

std::unique_ptr<Prober> make_sip_prober(ProbeContext& ctx) {
  int port[2] = {0, 0};
  const int fd[2] = {open_udp(AF_INET, port[0]), open_udp(AF_INET6, port[1])};
  if (fd[0] < 0 && fd[1] < 0)
    throw ProbeError(std::string("cannot open a UDP socket for SIP: ") + std::strerror(errno));
  std::random_device rd;
  const std::uint64_t cookie = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  auto p = std::make_unique<SipProber>(ctx.loop, *ctx.registry, fd, port, cookie);
  if (!p->error().empty()) throw ProbeError(p->error());
  p->on_check(ctx.on_check);
  return p;
}

}  // namespace siteprobe::probes
