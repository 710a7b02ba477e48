// The libuv shell of the ICMP prober: its raw or datagram sockets, reading replies, and the
// factory the registry calls.
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <linux/sock_diag.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>

#include "metrics/families.h"
#include "probes/icmp.h"
#include "probes/registry.h"

namespace siteprobe::probes {

namespace {

constexpr std::uint64_t kTraceCookie = 0x7472616365000000;  // "trace": a trace's payloads differ

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Socket {
  int fd = -1;
  // Raw sockets: a second one that only sends (it reads nothing: its filter blocks every type).
  // Nothing waits on it, so the kernel's write-space wake-up after each sent packet finds no
  // waiter to lock and call, as it does on a socket in the loop's epoll set (about 1 % of the CPU
  // at 10k targets). -1: send on `fd`.
  int send_fd = -1;
  bool raw = false;
  std::uint16_t ident = 0;  // datagram sockets: the identifier the kernel gave (the bound port)
  UvHandle<uv_poll_t> poll;
  std::uint32_t drops = 0;  // last SO_RXQ_OVFL value
};

// Opens one ICMP socket for `af`: raw first, then unprivileged datagram. Returns "" or what failed.
std::string open_icmp(int af, Socket& s) {
  const int proto = af == AF_INET ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
  s.fd = socket(af, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  s.raw = s.fd >= 0;
  if (s.fd < 0) s.fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (s.fd < 0) return std::strerror(errno);
  if (!s.raw) {
    if (const int e = bind_icmp_ident(s.fd, af, s.ident)) {
      ::close(s.fd);
      s.fd = -1;
      return std::string("cannot bind the unprivileged ICMP socket to get an echo identifier: ") +
             std::strerror(e);
    }
  }
  const int one = 1, rcvbuf = 8 << 20, sndbuf = 2 << 20;
  if (setsockopt(s.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (setsockopt(s.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
    setsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  setsockopt(s.fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  setsockopt(s.fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (!s.raw) return "";
  // The receiving socket gets only echo replies and the errors that quote our requests; the
  // sending one nothing.
  s.send_fd = socket(af, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (af == AF_INET) {
    icmp_filter filt{~0u};
    if (s.send_fd >= 0 && setsockopt(s.send_fd, SOL_RAW, ICMP_FILTER, &filt, sizeof filt) != 0) {
      ::close(s.send_fd);  // it would queue every reply unread
      s.send_fd = -1;
    }
    filt.data = ~((1u << kV4EchoReply) | (1u << kV4Unreach) | (1u << kV4TimeExceeded));
    setsockopt(s.fd, SOL_RAW, ICMP_FILTER, &filt, sizeof filt);
  } else {
    icmp6_filter filt;
    ICMP6_FILTER_SETBLOCKALL(&filt);
    if (s.send_fd >= 0 && setsockopt(s.send_fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof filt) != 0) {
      ::close(s.send_fd);
      s.send_fd = -1;
    }
    ICMP6_FILTER_SETPASS(kV6EchoReply, &filt);
    ICMP6_FILTER_SETPASS(kV6Unreach, &filt);
    ICMP6_FILTER_SETPASS(kV6TimeExceeded, &filt);
    setsockopt(s.fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof filt);
  }
  if (s.send_fd >= 0 && setsockopt(s.send_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
    setsockopt(s.send_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  return "";
}

class IcmpProber final : public Prober {
 public:
  IcmpProber(uv_loop_t* loop, prometheus::Registry& reg, Socket v4, Socket v6, std::uint64_t cookie,
             std::uint16_t ident)
      : loop_(loop),
        families_(reg),
        exposition_(std::make_shared<IcmpExposition>()),
        engine_(
            families_, *exposition_, cookie,
            [this](IcmpEngine::OutPacket* batch, std::size_t n) { send_batch(batch, n); }, realtime_ns),
        tracer_(
            cookie ^ kTraceCookie,
            [this](const sockaddr_storage& to, const std::vector<std::uint8_t>& pkt, int ttl) {
              return send(to, pkt, ttl);
            },
            realtime_ns),
        sock_{std::move(v4), std::move(v6)} {
    for (int v6i = 0; v6i < 2; ++v6i) {
      Socket& s = sock_[v6i];
      if (s.fd < 0) continue;
      engine_.set_ident(v6i == 1, s.raw ? ident : s.ident);
      // Traces need the ICMP errors that only raw sockets read, and an identifier of their own.
      if (s.raw) tracer_.set_ident(v6i == 1, static_cast<std::uint16_t>(ident ^ 0x8000));
      int rc = s.poll.init([&](uv_poll_t* h) { return uv_poll_init(loop_, h, s.fd); });
      if (rc == 0) {
        s.poll.get()->data = this;
        rc = uv_poll_start(s.poll.get(), UV_READABLE, [](uv_poll_t* h, int status, int) noexcept {
          auto* self = static_cast<IcmpProber*>(h->data);
          if (status >= 0) self->on_readable(h == self->sock_[1].poll.get());
        });
      }
      if (rc != 0) error_ = std::string("cannot watch the ICMP socket: ") + uv_strerror(rc);
    }
    engine_.set_drain([this] {
      for (int v6i = 0; v6i < 2; ++v6i) {
        if (sock_[v6i].fd < 0) continue;
        read_socket(v6i == 1, kDrainRounds);
        // Drops the kernel counted while no reply carried the news (the queue was full until now).
        std::uint32_t info[SK_MEMINFO_VARS] = {};
        socklen_t len = sizeof info;
        if (getsockopt(sock_[v6i].fd, SOL_SOCKET, SO_MEMINFO, info, &len) == 0 &&
            len >= (SK_MEMINFO_DROPS + 1) * sizeof(std::uint32_t))
          note_drops(v6i == 1, info[SK_MEMINFO_DROPS]);
      }
    });
  }
  ~IcmpProber() override { close(); }
  const std::string& error() const { return error_; }  // set if a socket cannot be watched

  void set_targets(const Config& config, const std::vector<Target>& targets) override {
    engine_.set_rate(config.icmp_max_packets_per_second);
    engine_.set_confirm_rounds(config.site_state.down_after);
    engine_.set_targets(targets, static_cast<std::int64_t>(uv_hrtime()));
    timer_.arm();
  }
  std::shared_ptr<const Exposition> exposition() const override { return exposition_; }
  void on_round(RoundFn fn, PrefetchFn prefetch) {
    engine_.on_round(std::move(fn));
    engine_.prefetch_round(std::move(prefetch));
  }
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    engine_.set_address(key, addr);
  }
  void probe_now(const std::string& key) override {
    engine_.probe_now(key, static_cast<std::int64_t>(uv_hrtime()));
    timer_.arm();
  }
  void trace(const std::string& key, int max_hops, Duration timeout, TraceDoneFn done) {
    const auto addr = engine_.address(key);
    if (!addr) {
      TraceResult r;
      r.key = key;
      r.error = "not probed over ICMP";
      done(r);
      return;
    }
    tracer_.start(key, *addr, max_hops, timeout.count(), static_cast<std::int64_t>(uv_hrtime()),
                  std::move(done));
    trace_timer_.arm();
  }
  void close() override {
    trace_timer_.close();
    for (auto& s : sock_) {
      s.poll.reset();
      if (s.fd >= 0) ::close(s.fd);
      if (s.send_fd >= 0) ::close(s.send_fd);
      s.fd = s.send_fd = -1;
    }
    timer_.close();
  }

 private:
  // The engine's batch: one sendmmsg per run of packets of one address family. A packet the
  // kernel refuses (sendmmsg fails on it) is marked failed and the rest go on.
  void send_batch(IcmpEngine::OutPacket* batch, std::size_t n) {
    std::array<mmsghdr, IcmpEngine::kBatch> msgs;
    std::array<iovec, IcmpEngine::kBatch> iov;
    for (std::size_t i = 0; i < n;) {
      const bool v6 = batch[i].to.ss_family == AF_INET6;
      std::size_t end = i;
      for (; end < n && (batch[end].to.ss_family == AF_INET6) == v6; ++end) {
        auto& b = batch[end];
        b.ok = false;
        iov[end] = {b.bytes.data(), b.bytes.size()};
        msgs[end].msg_hdr = {};
        msgs[end].msg_hdr.msg_name = &b.to;
        msgs[end].msg_hdr.msg_namelen = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
        msgs[end].msg_hdr.msg_iov = &iov[end];
        msgs[end].msg_hdr.msg_iovlen = 1;
      }
      const int fd = sock_[v6].send_fd >= 0 ? sock_[v6].send_fd : sock_[v6].fd;
      while (fd >= 0 && i < end) {
        const int sent = sendmmsg(fd, &msgs[i], static_cast<unsigned>(end - i), 0);
        if (sent <= 0) {
          ++i;  // this one failed (counted by the engine); go on with the next
          continue;
        }
        for (int k = 0; k < sent; ++k, ++i) batch[i].ok = msgs[i].msg_len == batch[i].bytes.size();
      }
      i = end;
    }
  }

  // A trace's packet, with its TTL (hop limit).
  bool send(const sockaddr_storage& to, const std::vector<std::uint8_t>& pkt, int ttl) {
    const bool v6 = to.ss_family == AF_INET6;
    const Socket& s = sock_[v6];
    if (s.fd < 0) return false;
    const socklen_t al = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    iovec iov{const_cast<std::uint8_t*>(pkt.data()), pkt.size()};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_name = const_cast<sockaddr_storage*>(&to);
    m.msg_namelen = al;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = v6 ? int{IPPROTO_IPV6} : int{IPPROTO_IP};
    c->cmsg_type = v6 ? IPV6_HOPLIMIT : IP_TTL;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
    return sendmsg(s.fd, &m, 0) == static_cast<ssize_t>(pkt.size());
  }

  void on_readable(bool v6) {
    read_socket(v6, 64);  // bounded, so sends are never starved
    timer_.arm();
  }

  // The kernel's drop count for a socket (cumulative): new drops are counted, and rounds in flight
  // end as stalled rather than lost.
  void note_drops(bool v6, std::uint32_t drops) {
    Socket& s = sock_[v6];
    if (drops <= s.drops) return;
    (v6 ? families_.rx_drops_v6 : families_.rx_drops_v4)->Increment(drops - s.drops);
    s.drops = drops;
    engine_.drops_seen(static_cast<std::int64_t>(uv_hrtime()));
  }

  // Up to `max_rounds` batches of kBatch packets.
  void read_socket(bool v6, int max_rounds) {
    auto& [bufs, ctrl, from, iov, msgs] = *rx_;
    Socket& s = sock_[v6];
    for (int rounds = 0; rounds < max_rounds; ++rounds) {
      for (unsigned i = 0; i < kBatch; ++i) {
        iov[i] = {bufs[i].data(), bufs[i].size()};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = ctrl[i].data();
        msgs[i].msg_hdr.msg_controllen = ctrl[i].size();
      }
      const int n = recvmmsg(s.fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) break;
      const auto now = static_cast<std::int64_t>(uv_hrtime());
      std::array<const std::uint8_t*, kBatch> data;
      std::array<std::size_t, kBatch> len;
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        data[i] = bufs[i].data();
        len[i] = msgs[i].msg_len;
        if (!v6 && s.raw) {  // a raw IPv4 socket reads the IP header too
          const std::size_t ihl = ipv4_header_len(data[i], len[i]);
          data[i] += ihl;
          len[i] = ihl ? len[i] - ihl : 0;
        }
      }
      engine_.prefetch(v6, data.data(), len.data(), static_cast<std::size_t>(n));
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        std::int64_t rx = 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
          if (c->cmsg_level != SOL_SOCKET) continue;
          if (c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts;
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            rx = static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
          } else if (c->cmsg_type == SO_RXQ_OVFL) {
            std::uint32_t drops;
            std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
            note_drops(v6, drops);
          }
        }
        if (!rx) rx = realtime_ns();
        if (len[i] == 0) continue;  // not a valid IPv4 header
        if (tracer_.active() && tracer_.on_packet(v6, data[i], len[i], from[i], now)) continue;
        engine_.on_packet(v6, data[i], len[i], from[i], rx, now);
      }
      if (static_cast<unsigned>(n) < kBatch) break;
    }
    engine_.publish();
  }

  // Receive batch buffers, on the heap: no big thread_local (every HTTP thread would get one).
  static constexpr unsigned kBatch = 64;
  static constexpr int kDrainRounds = 4096;  // before deadlines: everything queued (8 MB buffer)
  struct RxBuffers {
    std::array<std::array<std::uint8_t, 2048>, kBatch> bufs;
    std::array<std::array<char, 256>, kBatch> ctrl;
    std::array<sockaddr_storage, kBatch> from;
    std::array<iovec, kBatch> iov;
    std::array<mmsghdr, kBatch> msgs;
  };
  std::unique_ptr<RxBuffers> rx_ = std::make_unique<RxBuffers>();
  uv_loop_t* loop_;
  IcmpFamilies families_;
  std::shared_ptr<IcmpExposition> exposition_;
  IcmpEngine engine_;
  PathTracer tracer_;
  Socket sock_[2];
  EngineTimer<IcmpEngine> timer_{loop_, engine_, IcmpEngine::kGrainNs};
  EngineTimer<PathTracer> trace_timer_{loop_, tracer_};
  std::string error_;
};

}  // namespace

std::unique_ptr<Prober> make_icmp_prober(ProbeContext& ctx) {
  Socket v4, v6;
  if (const std::string e = open_icmp(AF_INET, v4); !e.empty()) {
    throw ProbeError(
        e.rfind("cannot bind", 0) == 0
            ? "ICMP: " + e
            : "cannot open an ICMP socket (" + e +
                  "). Either grant CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW; or setcap "
                  "cap_net_raw+ep on the binary), or allow unprivileged ICMP for this process's group (gid " +
                  std::to_string(getgid()) + "): sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"");
  }
  // IPv6 is optional (hosts without it): its targets then count send errors, and the log says why.
  const std::string e6 = open_icmp(AF_INET6, v6);
  const std::string mode = std::string("ipv4=") + (v4.raw ? "raw" : "datagram") + " ipv6=" +
                           (v6.fd < 0 ? "unavailable (" + e6 + ")" : (v6.raw ? "raw" : "datagram"));
  std::random_device rd;
  const std::uint64_t cookie = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  const auto ident = static_cast<std::uint16_t>(rd());
  auto p = std::make_unique<IcmpProber>(ctx.loop, *ctx.registry, std::move(v4), std::move(v6), cookie, ident);
  if (!p->error().empty()) throw ProbeError(p->error());
  p->on_round(ctx.on_round, ctx.prefetch_round);
  ctx.request_trace = [raw = p.get()](const std::string& key, int max_hops, Duration timeout,
                                      TraceDoneFn done) {
    raw->trace(key, max_hops, timeout, std::move(done));
  };
  if (ctx.log_info) ctx.log_info("icmp sockets open", "mode", mode);
  return p;
}

}  // namespace siteprobe::probes
