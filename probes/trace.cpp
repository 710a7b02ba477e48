#include "probes/trace.h"

#include <algorithm>

#include "probes/icmp.h"
#include "util/net.h"

namespace siteprobe::probes {

namespace {
// Sequence number of a trace request: serial (8 bits), TTL (6), packet of the hop (2).
std::uint16_t seq_of(std::uint8_t serial, int ttl, int n) {
  return static_cast<std::uint16_t>(serial << 8 | ttl << 2 | n);
}
}  // namespace

void PathTracer::start(const std::string& key, const sockaddr_storage& dst, int max_hops,
                       std::int64_t timeout_ns, std::int64_t now, TraceDoneFn done) {
  TraceResult fail;
  fail.key = key;
  const bool v6 = dst.ss_family == AF_INET6;
  if (dst.ss_family != AF_INET && !v6) fail.error = "no address";
  if (fail.error.empty() && !ident_[v6])
    fail.error = "unsupported: ICMP errors reach raw sockets only (grant CAP_NET_RAW)";
  if (!fail.error.empty()) {
    done(fail);
    return;
  }
  Trace t;
  t.serial = serial_++;
  t.key = key;
  t.dst = dst;
  t.max_hops = std::clamp(max_hops, 1, kMaxHops);
  t.deadline = now + timeout_ns;
  t.from.resize(static_cast<std::size_t>(t.max_hops));
  t.answer.assign(static_cast<std::size_t>(t.max_hops), kNone);
  t.done = std::move(done);
  int sent = 0;
  for (int ttl = 1; ttl <= t.max_hops; ++ttl)
    for (int n = 0; n < kPacketsPerHop; ++n) {
      EchoFields f{ident_[v6], seq_of(t.serial, ttl, n), cookie_, 0, 0, realtime_()};
      build_echo(v6, f, kPayloadMin, pkt_);
      sent += send_(dst, pkt_, ttl) ? 1 : 0;
    }
  if (!sent) {
    fail.error = "send failed";
    t.done(fail);
    return;
  }
  traces_.push_back(std::move(t));
}

bool PathTracer::on_packet(bool ipv6, const std::uint8_t* data, std::size_t len, const sockaddr_storage& src,
                           std::int64_t now) {
  (void)now;
  if (src.ss_family != AF_INET && src.ss_family != AF_INET6) return false;
  const ParsedIcmp r = parse_icmp(ipv6, data, len);
  Answer a = kNone;
  if (r.kind == IcmpKind::EchoReply && r.has_fields && r.fields.cookie == cookie_)
    a = kReply;
  else if (r.kind == IcmpKind::TimeExceeded && r.has_header)
    a = kTimeExceeded;
  else if (r.kind == IcmpKind::Unreachable && r.has_header)
    a = kUnreachable;
  if (a == kNone || r.fields.ident != ident_[ipv6] || !ident_[ipv6]) return false;
  const auto serial = static_cast<std::uint8_t>(r.fields.seq >> 8);
  const int ttl = (r.fields.seq >> 2) & 0x3f;
  for (std::size_t i = 0; i < traces_.size(); ++i) {
    Trace& t = traces_[i];
    if (t.serial != serial || ttl < 1 || ttl > t.max_hops) continue;
    // An error must quote a request to the traced device; a reply must come from it.
    if (!same_address(a == kReply ? src : r.quoted_dst, t.dst)) return true;
    const auto h = static_cast<std::size_t>(ttl - 1);
    if (t.answer[h] == kNone || a == kReply) {
      t.answer[h] = a;
      t.from[h] = src;
    }
    if (complete(t)) finish(i);
    return true;
  }
  return true;  // a trace that has ended: ours, late
}

// Every TTL up to the end (the device's reply or an unreachable) has answered.
bool PathTracer::complete(const Trace& t) const {
  for (const Answer a : t.answer) {
    if (a == kNone) return false;
    if (a != kTimeExceeded) return true;
  }
  return true;
}

void PathTracer::finish(std::size_t i) {
  Trace t = std::move(traces_[i]);
  traces_.erase(traces_.begin() + static_cast<std::ptrdiff_t>(i));
  TraceResult res;
  res.key = t.key;
  res.end = "silent";
  for (int h = 0; h < t.max_hops; ++h) {
    const Answer a = t.answer[static_cast<std::size_t>(h)];
    const std::string addr = a == kNone ? "" : net::ip_text(t.from[static_cast<std::size_t>(h)]);
    res.hops.push_back(addr);
    if (a == kNone) continue;
    res.last_hop = h + 1;
    res.last_address = addr;
    if (a == kReply || a == kUnreachable) {
      res.end = a == kReply ? "reached" : "unreachable";
      break;
    }
  }
  res.hops.resize(static_cast<std::size_t>(res.last_hop));  // nothing past the last answer
  t.done(res);
}

void PathTracer::run(std::int64_t now) {
  for (std::size_t i = 0; i < traces_.size();)
    if (traces_[i].deadline <= now)
      finish(i);
    else
      ++i;
}

std::optional<std::int64_t> PathTracer::next_due() const {
  std::optional<std::int64_t> due;
  for (const auto& t : traces_)
    if (!due || t.deadline < *due) due = t.deadline;
  return due;
}

}  // namespace siteprobe::probes
