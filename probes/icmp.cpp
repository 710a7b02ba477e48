#include "probes/icmp.h"

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
#include "probes/registry.h"

namespace siteprobe::probes {

// ---- Packet format -------------------------------------------------------------------------
namespace {

constexpr std::uint8_t kV4EchoRequest = 8, kV4EchoReply = 0, kV4Unreach = 3, kV4TimeExceeded = 11;
constexpr std::uint8_t kV6EchoRequest = 128, kV6EchoReply = 129, kV6Unreach = 1, kV6TimeExceeded = 3;

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
template <typename T>
void put_be(std::uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * (sizeof(T) - 1 - i)));
}
template <typename T>
T get_be(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v = v << 8 | p[i];
  return static_cast<T>(v);
}

std::uint16_t checksum(const std::uint8_t* p, std::size_t n) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n & 1) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Decodes id, seq and our payload fields from an echo message at `p` (ICMP header first).
bool decode_echo(const std::uint8_t* p, std::size_t len, EchoFields& f) {
  if (len < kIcmpHeader + kPayloadMin) return false;
  f.ident = get16(p + 4);
  f.seq = get16(p + 6);
  const std::uint8_t* d = p + kIcmpHeader;
  f.cookie = get_be<std::uint64_t>(d);
  f.slot = get_be<std::uint32_t>(d + 8);
  f.generation = get_be<std::uint32_t>(d + 12);
  f.send_ns = get_be<std::int64_t>(d + 16);
  return true;
}

}  // namespace

std::vector<std::uint8_t> build_echo(bool ipv6, const EchoFields& f, std::size_t payload_bytes) {
  std::vector<std::uint8_t> b;
  build_echo(ipv6, f, payload_bytes, b);
  return b;
}

void build_echo(bool ipv6, const EchoFields& f, std::size_t payload_bytes, std::vector<std::uint8_t>& b) {
  b.assign(kIcmpHeader + std::max(payload_bytes, kPayloadMin), 0);
  b[0] = ipv6 ? kV6EchoRequest : kV4EchoRequest;
  put16(&b[4], f.ident);
  put16(&b[6], f.seq);
  std::uint8_t* d = &b[kIcmpHeader];
  put_be(d, f.cookie);
  put_be(d + 8, f.slot);
  put_be(d + 12, f.generation);
  put_be(d + 16, f.send_ns);
  for (std::size_t i = kPayloadMin; i < b.size() - kIcmpHeader; ++i) d[i] = static_cast<std::uint8_t>(i);
  if (!ipv6) put16(&b[2], checksum(b.data(), b.size()));
}

std::size_t ipv4_header_len(const std::uint8_t* data, std::size_t len) {
  if (len < 20 || (data[0] >> 4) != 4) return 0;
  const std::size_t ihl = static_cast<std::size_t>(data[0] & 0x0f) * 4;
  return ihl >= 20 && ihl <= len ? ihl : 0;
}

ParsedIcmp parse_icmp(bool ipv6, const std::uint8_t* p, std::size_t len) {
  ParsedIcmp r;
  if (len < kIcmpHeader) {
    r.kind = IcmpKind::Truncated;
    return r;
  }
  const std::uint8_t type = p[0];
  if (type == (ipv6 ? kV6EchoReply : kV4EchoReply)) {
    r.kind = IcmpKind::EchoReply;
    r.has_fields = decode_echo(p, len, r.fields);
    if (!r.has_fields) {
      r.kind = IcmpKind::Truncated;
      r.fields.ident = get16(p + 4);
    }
    return r;
  }
  if (type == (ipv6 ? kV6Unreach : kV4Unreach))
    r.kind = IcmpKind::Unreachable;
  else if (type == (ipv6 ? kV6TimeExceeded : kV4TimeExceeded))
    r.kind = IcmpKind::TimeExceeded;
  else
    return r;
  // The error quotes the request: its IP header, then our echo header and payload.
  const std::uint8_t* q = p + kIcmpHeader;
  std::size_t qlen = len - kIcmpHeader;
  if (ipv6) {
    if (qlen < 40 || (q[0] >> 4) != 6 || q[6] != IPPROTO_ICMPV6) return r;
    auto* a = reinterpret_cast<sockaddr_in6*>(&r.quoted_dst);
    a->sin6_family = AF_INET6;
    std::memcpy(&a->sin6_addr, q + 24, 16);
    q += 40;
    qlen -= 40;
  } else {
    const std::size_t ihl = ipv4_header_len(q, qlen);
    if (!ihl || q[9] != IPPROTO_ICMP) return r;
    auto* a = reinterpret_cast<sockaddr_in*>(&r.quoted_dst);
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr, q + 16, 4);
    q += ihl;
    qlen -= ihl;
  }
  if (qlen >= 1 && q[0] == (ipv6 ? kV6EchoRequest : kV4EchoRequest))
    r.has_fields = decode_echo(q, qlen, r.fields);
  return r;
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  if (a.ss_family == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                       &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, 16) == 0;
  return false;
}

int bind_icmp_ident(int fd, int af, std::uint16_t& ident) {
  sockaddr_storage a{};
  a.ss_family = static_cast<sa_family_t>(af);
  socklen_t al = af == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), al) != 0) return errno;
  al = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al) != 0) return errno;
  ident = ntohs(af == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(a).sin6_port
                               : reinterpret_cast<sockaddr_in&>(a).sin_port);
  return ident ? 0 : EADDRNOTAVAIL;
}

// ---- Metrics --------------------------------------------------------------------------------
namespace {
template <typename B>
auto& register_family(prometheus::Registry& r, const char* name) {
  return B().Name(name).Help(help(name)).Register(r);
}
}  // namespace

IcmpFamilies::IcmpFamilies(prometheus::Registry& r)
    : invalid(register_family<prometheus::detail::Builder<prometheus::Counter>>(
          r, "siteprobe_icmp_invalid_replies_total")),
      rx_drops(register_family<prometheus::detail::Builder<prometheus::Counter>>(
          r, "siteprobe_icmp_receive_queue_drops_total")),
      send_errors(register_family<prometheus::detail::Builder<prometheus::Counter>>(
          r, "siteprobe_icmp_send_errors_total")),
      in_flight(
          register_family<prometheus::detail::Builder<prometheus::Gauge>>(r, "siteprobe_probes_in_flight")),
      invalid_cookie(invalid.Add({{"reason", "cookie"}})),
      invalid_source(invalid.Add({{"reason", "source"}})),
      invalid_truncated(invalid.Add({{"reason", "truncated"}})),
      invalid_unknown(invalid.Add({{"reason", "unknown_target"}})),
      rx_drops_v4(&rx_drops.Add({{"family", "ipv4"}})),
      rx_drops_v6(&rx_drops.Add({{"family", "ipv6"}})),
      send_errors_v4(&send_errors.Add({{"family", "ipv4"}})),
      send_errors_v6(&send_errors.Add({{"family", "ipv6"}})),
      in_flight_icmp(in_flight.Add({{"probe", "icmp"}})),
      stalled_rounds(register_family<prometheus::detail::Builder<prometheus::Counter>>(
                         r, "siteprobe_icmp_stalled_rounds_total")
                         .Add({})) {}

void IcmpExposition::render(std::string& out) const {
  const auto all = series.snapshot();
  out.reserve(out.size() + all.size() * 2600);
  const auto each = [&](const char* name, auto&& value) {
    append_header(out, name);
    for (const auto& s : all) {
      out += name;
      out += '{';
      out += s->labels;
      out += "} ";
      append_value(out, value(*s));
      out += '\n';
    }
  };
  each("siteprobe_device_up", [](const IcmpSeries& s) { return s.up.get(); });
  // Received before sent: a reply counted during the scrape never shows without its request.
  each("siteprobe_icmp_packets_received_total", [](const IcmpSeries& s) { return s.received.get(); });
  each("siteprobe_icmp_packets_sent_total", [](const IcmpSeries& s) { return s.sent.get(); });
  each("siteprobe_icmp_duplicate_replies_total", [](const IcmpSeries& s) { return s.duplicates.get(); });
  each("siteprobe_icmp_late_replies_total", [](const IcmpSeries& s) { return s.late.get(); });
  each("siteprobe_icmp_loss_ratio", [](const IcmpSeries& s) { return s.loss.get(); });
  each("siteprobe_icmp_jitter_seconds", [](const IcmpSeries& s) { return s.jitter.get(); });
  each("siteprobe_icmp_rtt_mean_seconds", [](const IcmpSeries& s) { return s.rtt_mean.get(); });
  append_header(out, "siteprobe_icmp_errors_total");
  for (const auto& s : all)
    for (const auto& [type, c] :
         {std::pair{"unreachable", &s->err_unreach}, {"time_exceeded", &s->err_ttl}}) {
      out += "siteprobe_icmp_errors_total{";
      out += s->labels;
      out += ",type=\"";
      out += type;
      out += "\"} ";
      append_value(out, c->get());
      out += '\n';
    }
  append_header(out, "siteprobe_icmp_rtt_seconds");
  for (const auto& s : all) {
    const Histogram& h = s->rtt;
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
      cum += h.buckets[i].get();
      out += "siteprobe_icmp_rtt_seconds_bucket{";
      out += s->labels;
      out += ',';
      out += i < h.bounds.size() ? h.le[i] : "le=\"+Inf\"";
      out += "} ";
      append_value(out, cum);
      out += '\n';
    }
    out += "siteprobe_icmp_rtt_seconds_sum{";
    out += s->labels;
    out += "} ";
    append_value(out, h.sum.get());
    out += "\nsiteprobe_icmp_rtt_seconds_count{";
    out += s->labels;
    out += "} ";
    append_value(out, cum);
    out += '\n';
  }
}

// ---- Engine ----------------------------------------------------------------------------------
namespace {
enum : std::uint8_t { kFree = 0, kPending, kReceived, kExpired };
}  // namespace

struct IcmpEngine::Slot {
  std::uint32_t idx = 0;
  std::string key;
  prometheus::Labels labels;
  IcmpSettings s;
  sockaddr_storage addr{};
  std::uint16_t round_no = 0;  // invalidates queued Send events of an earlier round
  bool in_round = false;
  int to_send = 0, outstanding = 0;
  std::uint16_t next_seq = 0, round_first_seq = 0;
  std::vector<double> round_rtts;  // per packet of the round, NaN if not (yet) answered
  bool round_stalled = false;      // overran, or a packet expired while the kernel was dropping replies
  struct Pkt {
    std::uint16_t seq = 0;
    std::uint8_t state = kFree;
    std::int64_t sent_mono = 0;
  };
  std::vector<Pkt> ring;  // a power of two larger than a round, indexed by seq
  Pkt& pkt(std::uint16_t seq) { return ring[seq & (ring.size() - 1)]; }

  std::shared_ptr<IcmpSeries> m;
};

IcmpEngine::IcmpEngine(IcmpFamilies& m, IcmpExposition& x, std::uint64_t cookie, SendFn send, Clock realtime)
    : m_(m), x_(x), cookie_(cookie), send_(std::move(send)), realtime_(std::move(realtime)) {}

IcmpEngine::~IcmpEngine() {
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i]) remove_slot(i);
}

void IcmpEngine::remove_slot(std::uint32_t idx) {
  Slot& s = *slots_[idx];
  x_.series.remove(s.m);
  in_flight_ -= static_cast<std::size_t>(s.outstanding);
  m_.in_flight_icmp.Set(static_cast<double>(in_flight_));
  by_key_.erase(s.key);
  sched_.remove(slots_, idx);
}

void IcmpEngine::set_targets(const std::vector<Target>& targets, std::int64_t now) {
  std::unordered_map<std::string, const Target*> wanted;
  for (const auto& t : targets) wanted[t.key] = &t;
  // Drop targets that are gone or whose series must be rebuilt (labels or buckets changed).
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i]) continue;
    auto it = wanted.find(slots_[i]->key);
    if (it == wanted.end() || it->second->labels != slots_[i]->labels ||
        it->second->device->icmp.rtt_buckets != slots_[i]->s.rtt_buckets)
      remove_slot(i);
  }
  for (const auto& t : targets) {
    auto found = by_key_.find(t.key);
    if (found != by_key_.end()) {
      Slot& s = *slots_[found->second];
      const bool reschedule = s.s.interval != t.device->icmp.interval;
      s.s = t.device->icmp;
      if (reschedule) sched_.schedule(s.idx, s.key, s.s.interval.count(), now);
      continue;
    }
    const std::uint32_t idx = sched_.add(slots_);
    Slot& s = *slots_[idx];
    s.idx = idx;
    s.key = t.key;
    s.labels = t.labels;
    s.s = t.device->icmp;
    s.m = std::make_shared<IcmpSeries>(t.labels, s.s.rtt_buckets);
    x_.series.add(s.m);
    // Room for two rounds, so a late reply from the previous round is still recognised.
    std::size_t ring = 8;
    while (ring < 2 * static_cast<std::size_t>(s.s.packets)) ring *= 2;
    s.ring.resize(ring);
    by_key_[t.key] = idx;
    sched_.schedule(idx, s.key, s.s.interval.count(), now);
  }
}

std::shared_ptr<const IcmpSeries> IcmpEngine::series(const std::string& key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : slots_[it->second]->m;
}

void IcmpEngine::set_address(const std::string& key, const sockaddr_storage& addr) {
  auto it = by_key_.find(key);
  if (it != by_key_.end()) slots_[it->second]->addr = addr;
}

std::optional<std::int64_t> IcmpEngine::next_due() const {
  return sched_.next_due();
}

void IcmpEngine::run(std::int64_t now) {
  // Only when the loop ran late: on time, the I/O callbacks have kept up, and the drain's syscalls
  // would cost every wakeup.
  if (const auto due = sched_.next_due(); drain_ && due && now - *due > kLateNs) drain_();
  while (const auto e = sched_.pop(now)) {
    Slot& s = *slots_[e->slot];
    if (e->kind == Scheduler::kStart)
      start_round(s, now);
    else if (e->kind == kSend && e->arg == s.round_no)  // not a leftover of an overrun round
      send_next(s, now);
    else if (e->kind == kDeadline)
      expire(s, static_cast<std::uint16_t>(e->arg));
  }
}

void IcmpEngine::start_round(Slot& s, std::int64_t now) {
  if (s.in_round) {  // the previous round overran: siteprobe fell behind (starved, or paced sends)
    // Its unanswered packets had not reached their deadline: no verdict, not loss.
    s.round_stalled = true;
    for (int i = 0; i < static_cast<int>(s.round_rtts.size()); ++i)
      expire(s, static_cast<std::uint16_t>(s.round_first_seq + i));
    s.to_send = 0;
    maybe_finish_round(s);
  }
  s.in_round = true;
  s.round_no++;
  s.round_first_seq = s.next_seq;
  s.round_rtts.assign(0, 0.0);
  s.round_stalled = false;
  s.to_send = s.s.packets;
  s.outstanding = 0;
  send_next(s, now);
}

void IcmpEngine::send_next(Slot& s, std::int64_t now) {
  const std::uint32_t idx = s.idx;
  if (s.to_send <= 0) return;
  // Token bucket: refill, and if empty come back when the next token is due.
  tokens_ = std::min(tokens_ + static_cast<double>(now - tokens_at_) * rate_ / 1e9,
                     std::max(1.0, rate_ / 100));  // burst of 10 ms worth
  tokens_at_ = now;
  if (tokens_ < 1) {
    sched_.at(now + static_cast<std::int64_t>((1 - tokens_) * 1e9 / rate_) + 1, idx, kSend, s.round_no);
    return;
  }
  tokens_ -= 1;
  const std::uint16_t seq = s.next_seq++;
  auto& p = s.pkt(seq);
  p = {seq, kPending, now};
  s.round_rtts.push_back(std::nan(""));
  s.to_send--;
  s.outstanding++;
  in_flight_++;
  m_.in_flight_icmp.Set(static_cast<double>(in_flight_));
  sched_.at(now + s.s.timeout.count(), idx, kDeadline, seq);
  if (s.to_send > 0) sched_.at(now + s.s.spacing.count(), idx, kSend, s.round_no);
  if (s.addr.ss_family == AF_UNSPEC) return;  // unresolved: the packet simply times out
  const bool v6 = s.addr.ss_family == AF_INET6;
  EchoFields f{ident_[v6], seq, cookie_, idx, sched_.generation(idx), realtime_()};
  build_echo(v6, f, static_cast<std::size_t>(s.s.payload_bytes), pkt_);  // reuses one buffer
  if (send_(s.addr, pkt_))
    s.m->sent.inc();
  else
    (v6 ? m_.send_errors_v6 : m_.send_errors_v4)->Increment();
}

void IcmpEngine::expire(Slot& s, std::uint16_t seq) {
  auto& p = s.pkt(seq);
  if (p.seq != seq || p.state != kPending) return;
  p.state = kExpired;
  if (drops_at_ >= p.sent_mono) s.round_stalled = true;  // its reply may be one the kernel dropped
  s.outstanding--;
  in_flight_--;
  m_.in_flight_icmp.Set(static_cast<double>(in_flight_));
  maybe_finish_round(s);
}

void IcmpEngine::maybe_finish_round(Slot& s) {
  if (!s.in_round || s.to_send > 0 || s.outstanding > 0) return;
  s.in_round = false;
  double sum = 0, jsum = 0, prev = std::nan("");
  int got = 0, pairs = 0;
  for (double r : s.round_rtts) {
    if (std::isnan(r)) continue;
    sum += r;
    ++got;
    if (!std::isnan(prev)) {
      jsum += std::fabs(r - prev);
      ++pairs;
    }
    prev = r;
  }
  const auto n = static_cast<double>(s.round_rtts.size());
  if (s.round_stalled && (n == 0 || got < n)) {  // siteprobe's own stall left it unanswered: no verdict
    m_.stalled_rounds.Increment();
    if (on_round_) on_round_(s.key, {static_cast<int>(n), got, 0.0, 0.0, true});
    return;
  }
  s.m->loss.set(n > 0 ? (n - got) / n : 1.0);
  s.m->jitter.set(pairs ? jsum / pairs : 0.0);
  s.m->rtt_mean.set(got ? sum / got : std::nan(""));
  s.m->up.set(got > 0 ? 1 : 0);
  if (on_round_)
    on_round_(s.key, {static_cast<int>(n), got, got ? sum / got : 0.0, pairs ? jsum / pairs : 0.0});
}

void IcmpEngine::on_packet(bool ipv6, const std::uint8_t* data, std::size_t len, const sockaddr_storage& src,
                           std::int64_t rx_ns, std::int64_t now) {
  const ParsedIcmp r = parse_icmp(ipv6, data, len);
  if (r.kind == IcmpKind::Other) return;
  if (r.kind == IcmpKind::Truncated) {
    if (len >= kIcmpHeader && r.fields.ident == ident_[ipv6]) m_.invalid_truncated.Increment();
    return;
  }
  if (!r.has_fields) return;  // an error quoting someone else's packet
  const EchoFields& f = r.fields;
  if (f.ident != ident_[ipv6]) return;  // another pinger's traffic on a raw socket
  if (f.cookie != cookie_) {
    m_.invalid_cookie.Increment();
    return;
  }
  if (!sched_.live(f.slot, f.generation)) {
    m_.invalid_unknown.Increment();
    return;
  }
  Slot& s = *slots_[f.slot];
  if (r.kind != IcmpKind::EchoReply) {
    if (same_address(r.quoted_dst, s.addr))
      (r.kind == IcmpKind::Unreachable ? s.m->err_unreach : s.m->err_ttl).inc();
    else
      m_.invalid_source.Increment();
    return;
  }
  if (!same_address(src, s.addr)) {
    m_.invalid_source.Increment();
    return;
  }
  auto& p = s.pkt(f.seq);
  if (p.seq != f.seq || p.state == kFree || p.state == kExpired) {
    s.m->late.inc();
    return;
  }
  if (p.state == kReceived) {
    s.m->duplicates.inc();
    return;
  }
  // send_ns comes from the wire (a peer may echo a changed payload): subtract without overflow.
  double rtt = static_cast<double>(static_cast<std::int64_t>(static_cast<std::uint64_t>(rx_ns) -
                                                             static_cast<std::uint64_t>(f.send_ns))) /
               1e9;
  const double mono = static_cast<double>(now - p.sent_mono) / 1e9;
  if (rtt < 0 || rtt > mono + 0.05) rtt = mono;  // wall clock stepped: fall back to monotonic
  if (rtt > static_cast<double>(s.s.timeout.count()) / 1e9) {
    // Late by its kernel receive time, whenever the loop got to it: after a stall, a reply read
    // before its deadline was processed may still have come too late.
    s.m->late.inc();
    expire(s, f.seq);
    return;
  }
  p.state = kReceived;
  s.m->received.inc();
  s.m->rtt.observe(rtt);
  const auto i = static_cast<std::uint16_t>(f.seq - s.round_first_seq);
  if (s.in_round && i < s.round_rtts.size()) s.round_rtts[i] = rtt;
  s.outstanding--;
  in_flight_--;
  m_.in_flight_icmp.Set(static_cast<double>(in_flight_));
  maybe_finish_round(s);
}

// ---- libuv shell ---------------------------------------------------------------------------
namespace {

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Socket {
  int fd = -1;
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
  if (s.raw && af == AF_INET) {
    // Only echo replies and the errors that quote our requests reach us.
    icmp_filter filt{~((1u << kV4EchoReply) | (1u << kV4Unreach) | (1u << kV4TimeExceeded))};
    setsockopt(s.fd, SOL_RAW, ICMP_FILTER, &filt, sizeof filt);
  } else if (s.raw) {
    icmp6_filter filt;
    ICMP6_FILTER_SETBLOCKALL(&filt);
    ICMP6_FILTER_SETPASS(kV6EchoReply, &filt);
    ICMP6_FILTER_SETPASS(kV6Unreach, &filt);
    ICMP6_FILTER_SETPASS(kV6TimeExceeded, &filt);
    setsockopt(s.fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof filt);
  }
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
            [this](const sockaddr_storage& to, const std::vector<std::uint8_t>& pkt) {
              return send(to, pkt);
            },
            realtime_ns),
        sock_{std::move(v4), std::move(v6)} {
    for (int v6i = 0; v6i < 2; ++v6i) {
      Socket& s = sock_[v6i];
      if (s.fd < 0) continue;
      engine_.set_ident(v6i == 1, s.raw ? ident : s.ident);
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
    engine_.set_targets(targets, static_cast<std::int64_t>(uv_hrtime()));
    timer_.arm();
  }
  std::shared_ptr<const Exposition> exposition() const override { return exposition_; }
  void on_round(RoundFn fn) { engine_.on_round(std::move(fn)); }
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    engine_.set_address(key, addr);
  }
  void close() override {
    for (auto& s : sock_) {
      s.poll.reset();
      if (s.fd >= 0) ::close(s.fd);
      s.fd = -1;
    }
    timer_.close();
  }

 private:
  bool send(const sockaddr_storage& to, const std::vector<std::uint8_t>& pkt) {
    const bool v6 = to.ss_family == AF_INET6;
    const Socket& s = sock_[v6];
    if (s.fd < 0) return false;
    const socklen_t al = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    return sendto(s.fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&to), al) ==
           static_cast<ssize_t>(pkt.size());
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
        const std::uint8_t* p = bufs[i].data();
        std::size_t len = msgs[i].msg_len;
        if (!v6 && s.raw) {
          const std::size_t ihl = ipv4_header_len(p, len);
          if (!ihl) continue;
          p += ihl;
          len -= ihl;
        }
        engine_.on_packet(v6, p, len, from[i], rx, now);
      }
      if (static_cast<unsigned>(n) < kBatch) break;
    }
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
  Socket sock_[2];
  EngineTimer<IcmpEngine> timer_{loop_, engine_};
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
  p->on_round(ctx.on_round);
  if (ctx.log_info) ctx.log_info("icmp sockets open", "mode", mode);
  return p;
}

}  // namespace siteprobe::probes
