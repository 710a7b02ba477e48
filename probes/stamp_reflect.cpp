#include "probes/stamp_reflect.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "probes/stamp_packet.h"
#include "util/net.h"

namespace siteprobe::probes {

struct StampReflector::Socket {
  int fd = -1;
  int af = AF_INET;
  int port = 0;
  UvHandle<uv_poll_t> poll;
  StampReflector* owner = nullptr;
  ~Socket() {
    poll.reset();
    if (fd >= 0) ::close(fd);
  }
};

struct StampReflector::Expo final : Exposition {
  Count reflected, stateless_overflow, dropped_rate, invalid_short, invalid_long;
  Value sessions;
  Parts parts() const override {
    auto t = std::make_shared<std::string>();
    append_header(*t, "siteprobe_reflector_packets_total");
    append_line(*t, "siteprobe_reflector_packets_total", "result=\"reflected\"", reflected.get());
    append_line(*t, "siteprobe_reflector_packets_total", "result=\"rate_limited\"", dropped_rate.get());
    append_line(*t, "siteprobe_reflector_packets_total", "result=\"too_short\"", invalid_short.get());
    append_line(*t, "siteprobe_reflector_packets_total", "result=\"too_long\"", invalid_long.get());
    append_header(*t, "siteprobe_reflector_sessions");
    append_line(*t, "siteprobe_reflector_sessions", "", sessions.get());
    append_header(*t, "siteprobe_reflector_sessions_full_total");
    append_line(*t, "siteprobe_reflector_sessions_full_total", "", stateless_overflow.get());
    return slices(t);
  }
};

StampReflector::StampReflector(uv_loop_t* loop, Options o)
    : loop_(loop),
      opt_(std::move(o)),
      expo_(std::make_shared<Expo>()),
      in_(stamp::kMaxPacket + 1),
      out_(stamp::kMaxPacket) {}

StampReflector::~StampReflector() = default;

std::vector<int> StampReflector::ports() const {
  std::vector<int> p;
  for (const auto& s : sockets_) p.push_back(s->port);
  return p;
}

std::string StampReflector::start(std::string* warnings) {
  std::string errors;
  for (const auto& l : opt_.listen) {
    const auto colon = l.rfind(':');
    std::string host = colon == std::string::npos ? l : l.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    auto addr = net::parse_ip(host);
    const std::string port = colon == std::string::npos ? "" : l.substr(colon + 1);
    if (!addr || port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
      errors += "listen address \"" + l + "\" is not IP:PORT or [IPv6]:PORT; ";
      continue;
    }
    net::set_port(*addr, std::stoi(port));
    auto s = std::make_unique<Socket>();
    s->owner = this;
    s->af = addr->ss_family;
    const bool v6 = s->af == AF_INET6;
    s->fd = ::socket(s->af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1, ttl = 255;
    const auto fail = [&](const char* what) {
      const std::string e = l + ": " + what + ": " + std::strerror(errno);
      if (v6 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL) && warnings)
        *warnings += e + " (IPv6 skipped); ";
      else
        errors += e + "; ";
    };
    if (s->fd < 0) {
      fail("socket");
      continue;
    }
    bool ok = true;
    if (v6)
      ok = setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0 &&
           setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) == 0 &&
           setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one) == 0 &&
           setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) == 0 &&
           setsockopt(s->fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) == 0;
    else
      ok = setsockopt(s->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) == 0 &&
           setsockopt(s->fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) == 0 &&
           setsockopt(s->fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one) == 0 &&
           setsockopt(s->fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0;
    ok = ok && setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0;
    if (!ok) {
      fail("setsockopt");
      continue;
    }
    if (::bind(s->fd, reinterpret_cast<const sockaddr*>(&*addr),
               v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)) != 0) {
      fail("bind");
      continue;
    }
    sockaddr_storage bound{};
    socklen_t bl = sizeof bound;
    getsockname(s->fd, reinterpret_cast<sockaddr*>(&bound), &bl);
    net::ip_text(bound, &s->port);
    if (const int rc = s->poll.init([&](uv_poll_t* p) { return uv_poll_init(loop_, p, s->fd); })) {
      errors += l + ": uv_poll_init: " + uv_strerror(rc) + "; ";
      continue;
    }
    s->poll.get()->data = s.get();
    uv_must(uv_poll_start(s->poll.get(), UV_READABLE,
                          [](uv_poll_t* p, int, int) noexcept {
                            auto* so = static_cast<Socket*>(p->data);
                            so->owner->readable(*so);
                          }),
            "uv_poll_start");
    sockets_.push_back(std::move(s));
  }
  if (sockets_.empty() && errors.empty()) errors = "no listen address could be bound";
  return errors;
}

std::shared_ptr<const Exposition> StampReflector::exposition() const {
  return expo_;
}

bool StampReflector::admit(std::int64_t now) {
  // A token bucket of one second's worth: a flood, forged sources included, costs at most max_pps
  // replies a second.
  tokens_ = std::min(opt_.max_pps, tokens_ + static_cast<double>(now - tokens_at_) / 1e9 * opt_.max_pps);
  tokens_at_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

std::uint32_t StampReflector::reflector_seq(const sockaddr_storage& from, std::uint16_t ssid,
                                            std::uint32_t sender_seq, std::int64_t now) {
  if (!opt_.stateful) return sender_seq;
  if (now - last_sweep_ > 10LL * 1000000000) {  // idle sessions go after a minute
    for (auto it = sessions_.begin(); it != sessions_.end();)
      it = now - it->second.last_ns > 60LL * 1000000000 ? sessions_.erase(it) : std::next(it);
    last_sweep_ = now;
  }
  int port = 0;
  std::string key = net::ip_text(from, &port);
  key += '|' + std::to_string(port) + '|' + std::to_string(ssid);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {
    if (sessions_.size() >= kMaxSessions) {
      expo_->stateless_overflow.inc();
      return sender_seq;
    }
    it = sessions_.emplace(std::move(key), Session{}).first;
  }
  it->second.last_ns = now;
  expo_->sessions.set(static_cast<double>(sessions_.size()));
  return it->second.next++;
}

void StampReflector::readable(Socket& s) noexcept {
  for (int i = 0; i < 256; ++i) {
    sockaddr_storage from{};
    iovec iov{in_.data(), in_.size()};
    alignas(cmsghdr) char control[512];
    msghdr m{};
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(s.fd, &m, MSG_DONTWAIT);
    if (n < 0) return;
    const auto now = static_cast<std::int64_t>(uv_hrtime());
    timespec rx{};
    int tos = 0, ttl = 0;
    in_pktinfo pi4{};
    in6_pktinfo pi6{};
    bool have_pi = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
        std::memcpy(&rx, CMSG_DATA(c), sizeof rx);
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
        tos = *CMSG_DATA(c);
      } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                 (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
        std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        std::memcpy(&pi4, CMSG_DATA(c), sizeof pi4);
        have_pi = true;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
        std::memcpy(&tos, CMSG_DATA(c), sizeof tos);
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        std::memcpy(&pi6, CMSG_DATA(c), sizeof pi6);
        have_pi = true;
      }
    }
    const auto len = static_cast<std::size_t>(n);
    if (len < stamp::kTwampLightMinSender) {
      expo_->invalid_short.inc();
      continue;
    }
    if (len > stamp::kMaxPacket) {
      expo_->invalid_long.inc();
      continue;
    }
    if (!admit(now)) {
      expo_->dropped_rate.inc();
      continue;
    }
    if (rx.tv_sec == 0) clock_gettime(CLOCK_REALTIME, &rx);
    timespec tx{};
    clock_gettime(CLOCK_REALTIME, &tx);
    std::uint8_t dscp = 0;
    const std::uint32_t seq =
        reflector_seq(from, stamp::sender_ssid(in_.data(), len), stamp::sender_seq(in_.data(), len), now);
    const std::size_t out = stamp::encode_reflected(in_.data(), len, seq, stamp::to_ntp(rx),
                                                    stamp::to_ntp(tx), static_cast<std::uint8_t>(ttl),
                                                    static_cast<std::uint8_t>(tos), out_.data(), &dscp);
    // The reply: from the address the packet came to, with the DSCP asked for (and the ECN bits
    // cleared: the reflector does not claim ECN capability).
    iovec oi{out_.data(), out};
    alignas(cmsghdr) char oc[CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(int))]{};
    msghdr om{};
    om.msg_name = &from;
    om.msg_namelen = m.msg_namelen;
    om.msg_iov = &oi;
    om.msg_iovlen = 1;
    om.msg_control = oc;
    om.msg_controllen = sizeof oc;
    cmsghdr* c = CMSG_FIRSTHDR(&om);
    const int reply_tos = dscp << 2;
    if (s.af == AF_INET6) {
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_TCLASS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &reply_tos, sizeof reply_tos);
      c = CMSG_NXTHDR(&om, c);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof pi6);
      pi6.ipi6_ifindex = 0;
      std::memcpy(CMSG_DATA(c), &pi6, sizeof pi6);
    } else {
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_TOS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &reply_tos, sizeof reply_tos);
      c = CMSG_NXTHDR(&om, c);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof pi4);
      in_pktinfo src{};
      src.ipi_spec_dst = pi4.ipi_addr;  // the address the packet came to
      std::memcpy(CMSG_DATA(c), &src, sizeof src);
    }
    if (!have_pi) om.msg_controllen = CMSG_SPACE(sizeof(int));
    if (::sendmsg(s.fd, &om, MSG_DONTWAIT) >= 0) expo_->reflected.inc();
  }
}

}  // namespace siteprobe::probes
