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
#include "util/prefetch.h"

namespace siteprobe::probes {

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

Exposition::Parts IcmpExposition::parts() const {
  using S = std::shared_ptr<const IcmpSeries>;
  // sparse: a counter of rare events, rendered only once non-zero. Always-zero series were most of
  // the scrape (issue #12); rules and dashboards read a missing one as 0 (`or`, `increase() > 0`).
  const auto each = [](const char* name, auto value, bool sparse = false) {
    return SeriesFamily<S>{header(name), [name, value, sparse](std::string& out, const S& s) {
                             if (!sparse || value(*s) != 0) append_line(out, name, s->labels, value(*s));
                           }};
  };
  return family_parts<S>(
      series.snapshot(),
      {each("siteprobe_device_up", [](const IcmpSeries& s) { return s.up.get(); }),
       // Received before sent: a reply counted during the scrape never shows without its request.
       each("siteprobe_icmp_packets_received_total", [](const IcmpSeries& s) { return s.received.get(); }),
       each("siteprobe_icmp_packets_sent_total", [](const IcmpSeries& s) { return s.sent.get(); }),
       each(
           "siteprobe_icmp_duplicate_replies_total", [](const IcmpSeries& s) { return s.duplicates.get(); },
           true),
       each(
           "siteprobe_icmp_late_replies_total", [](const IcmpSeries& s) { return s.late.get(); }, true),
       each("siteprobe_icmp_loss_ratio", [](const IcmpSeries& s) { return s.loss.get(); }),
       each("siteprobe_icmp_jitter_seconds", [](const IcmpSeries& s) { return s.jitter.get(); }),
       // Not siteprobe_icmp_rtt_mean_seconds: rate(_sum) / rate(_count) of the histogram is the same
       // figure over any window (issue #12: derived values are left to PromQL).
       {header("siteprobe_icmp_errors_total"),
        [](std::string& out, const S& s) {
          for (const auto& [type, c] :
               {std::pair{"unreachable", &s->err_unreach}, {"time_exceeded", &s->err_ttl}}) {
            if (c->get() == 0) continue;  // sparse, as above
            out += "siteprobe_icmp_errors_total{";
            out += s->labels;
            out += ",type=\"";
            out += type;
            out += "\"} ";
            append_value(out, c->get());
            out += '\n';
          }
        }},
       {header("siteprobe_icmp_rtt_seconds"), [](std::string& out, const S& s) {
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
          append_line(out, "siteprobe_icmp_rtt_seconds_sum", s->labels, h.sum.get());
          append_line(out, "siteprobe_icmp_rtt_seconds_count", s->labels, cum);
        }}});
}

// ---- Engine ----------------------------------------------------------------------------------
namespace {
enum : std::uint8_t { kFree = 0, kPending, kReceived, kExpired };
}  // namespace

// Laid out hot first: a send, a reply and a deadline read only the first three cache lines (the
// address's bytes in use included), which prefetch() fetches.
struct alignas(64) IcmpEngine::Slot {
  struct Pkt {
    std::uint16_t seq = 0;
    std::uint8_t state = kFree;
    std::int64_t sent_mono = 0;
  };
  std::uint32_t idx = 0;
  std::uint32_t device_index = kNoDevice;  // Target::device_index, handed back with each round
  std::uint16_t round_no = 0;              // invalidates queued Send events of an earlier round
  std::uint16_t next_seq = 0, round_first_seq = 0;
  bool in_round = false;
  bool round_stalled = false;  // overran, or a packet expired while the kernel was dropping replies
  // A trap's extra rounds (probe_now): the round in flight is one; more are due after it (one asked
  // for while a round was in flight, and confirmations while extra rounds find the device silent).
  bool round_extra = false, extra_pending = false;
  int extra_left = 0;
  int to_send = 0;                 // and outstanding_[idx]: packets sent, neither answered nor expired
  std::vector<Pkt> ring;           // a power of two larger than a round, indexed by seq
  std::vector<double> round_rtts;  // per packet of the round, NaN if not (yet) answered
  std::shared_ptr<IcmpSeries> m;
  IcmpSettings s;
  sockaddr_storage addr{};
  std::string key;
  Pkt& pkt(std::uint16_t seq) { return ring[seq & (ring.size() - 1)]; }
  const Pkt& pkt(std::uint16_t seq) const { return ring[seq & (ring.size() - 1)]; }
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
  in_flight_ -= outstanding_[idx];
  outstanding_[idx] = 0;
  publish();
  by_key_.erase(s.key);
  sched_.remove(slots_, idx);
}

namespace {
// The device's settings, at the target's capped interval (a round takes packets * spacing + timeout).
IcmpSettings settings(const Target& t) {
  IcmpSettings s = t.device->icmp;
  s.interval = capped_interval(s.interval, s.timeout + (s.packets - 1) * s.spacing, t.max_interval);
  return s;
}
}  // namespace

void IcmpEngine::set_targets(const std::vector<Target>& targets, std::int64_t now) {
  std::unordered_map<std::string, const Target*> wanted;
  for (const auto& t : targets) wanted[t.key] = &t;
  // Drop targets that are gone or whose series must be rebuilt (labels or buckets changed).
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i]) continue;
    auto it = wanted.find(slots_[i]->key);
    if (it == wanted.end() || it->second->labels->text != slots_[i]->m->labels ||
        it->second->device->icmp.rtt_buckets != slots_[i]->s.rtt_buckets)
      remove_slot(i);
  }
  for (const auto& t : targets) {
    auto found = by_key_.find(t.key);
    if (found != by_key_.end()) {
      Slot& s = *slots_[found->second];
      const IcmpSettings want = settings(t);
      const bool reschedule = s.s.interval != want.interval;
      s.s = want;
      s.device_index = t.device_index;
      if (reschedule) sched_.schedule(s.idx, s.key, s.s.interval.count(), now);
      continue;
    }
    const std::uint32_t idx = sched_.add(slots_);
    if (idx >= outstanding_.size()) outstanding_.resize(idx + 1);
    Slot& s = *slots_[idx];
    s.idx = idx;
    s.key = t.key;
    s.device_index = t.device_index;
    s.s = settings(t);
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

std::optional<sockaddr_storage> IcmpEngine::address(const std::string& key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return slots_[it->second]->addr;
}

void IcmpEngine::probe_now(const std::string& key, std::int64_t now) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  Slot& s = *slots_[it->second];
  // Enough extra rounds to confirm a dead device (site_state.down_after), each started when the
  // one before ends; a round in flight (it began before the event) is not one of them.
  s.extra_left = confirm_rounds_;
  if (s.in_round)
    s.extra_pending = true;
  else
    sched_.at(now, it->second, kNow);
}

std::optional<std::int64_t> IcmpEngine::next_due() const {
  return sched_.next_due();
}

void IcmpEngine::run(std::int64_t now) {
  now_ = now;
  // Only when the loop ran late: on time, the I/O callbacks have kept up, and the drain's syscalls
  // would cost every wakeup.
  if (const auto due = sched_.next_due(); drain_ && due && now - *due > kGrainNs + kLateNs) drain_();
  // A grain's events as one batch, each stage prefetching what the next reads (see prefetch()).
  // Most deadlines find their packet answered, told from the dense outstanding_ without the slot.
  while (sched_.pop_due(now, due_) > 0) {
    for (int stage = 0; stage < 2; ++stage)
      for (const auto& e : due_)
        if (e.kind != kDeadline) prefetch(slots_[e.slot].get(), stage, -1);
    for (const auto& e : due_) handle(e, now);
    due_.clear();
  }
  flush();
  publish();
}

void IcmpEngine::handle(const Scheduler::Event& e, std::int64_t now) {
  if (e.kind == kDeadline && outstanding_[e.slot] == 0) return;
  Slot& s = *slots_[e.slot];
  // An extra round in flight stands for this grid round (the grid itself is kept): cutting it
  // short would make it an overrun, a round without a verdict, and end its confirmations.
  if (e.kind == Scheduler::kStart && s.in_round && s.round_extra) return;
  if (e.kind == Scheduler::kStart || (e.kind == kNow && !s.in_round)) {  // kNow: a trap's extra round
    start_round(s, now);
    s.round_extra = e.kind == kNow;
  } else if (e.kind == kSend && e.arg == s.round_no)  // not a leftover of an overrun round
    send_next(s, now);
  else if (e.kind == kDeadline)
    expire(s, static_cast<std::uint16_t>(e.arg));
}

// seq: the packet a reply answers, or -1 for the next one to send. A reply that may end its round
// also prefetches the device's state in the round's consumers.
void IcmpEngine::prefetch(const Slot* s, int stage, int seq) const {
  if (!s) return;
  const auto* p = reinterpret_cast<const char*>(s);
  if (stage == 0) {
    siteprobe::prefetch(p);
    siteprobe::prefetch(p + 64);
    siteprobe::prefetch(p + 128);
  } else if (stage == 1) {
    if (!s->ring.empty())
      siteprobe::prefetch(&s->pkt(static_cast<std::uint16_t>(seq < 0 ? s->next_seq : seq)));
    siteprobe::prefetch(s->round_rtts.data());
    const auto* m = reinterpret_cast<const char*>(s->m.get());
    for (std::size_t off = 0; off < sizeof(IcmpSeries); off += 64) siteprobe::prefetch(m + off);
  } else if (seq >= 0) {
    siteprobe::prefetch(s->m->rtt.buckets.get());
  }
  if (stage > 0 && seq >= 0 && prefetch_round_ && s->to_send == 0 && outstanding_[s->idx] == 1)
    prefetch_round_(s->device_index, stage == 2);
}

void IcmpEngine::prefetch(bool ipv6, const std::uint8_t* const* data, const std::size_t* len,
                          std::size_t n) const {
  const auto slot_of = [&](std::size_t i, std::uint16_t& seq) -> const Slot* {
    std::uint32_t idx = 0;
    if (!peek_echo_slot(ipv6, data[i], len[i], idx, seq)) return nullptr;
    return idx < slots_.size() ? slots_[idx].get() : nullptr;
  };
  for (int stage = 0; stage < 3; ++stage)
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t seq = 0;
      prefetch(slot_of(i, seq), stage, seq);
    }
}

void IcmpEngine::publish() {
  if (in_flight_ == published_) return;
  published_ = in_flight_;
  m_.in_flight_icmp.Set(static_cast<double>(in_flight_));
}

void IcmpEngine::flush() {
  if (tx_n_ == 0) return;
  send_(tx_.data(), tx_n_);
  for (std::size_t i = 0; i < tx_n_; ++i) {
    const OutPacket& p = tx_[i];
    if (p.ok)
      slots_[p.slot]->m->sent.inc();
    else
      (p.to.ss_family == AF_INET6 ? m_.send_errors_v6 : m_.send_errors_v4)->Increment();
  }
  tx_n_ = 0;
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
  outstanding_[s.idx] = 0;
  send_next(s, now);
}

void IcmpEngine::send_next(Slot& s, std::int64_t now) {
  const std::uint32_t idx = s.idx;
  if (s.to_send <= 0) return;
  // Token bucket: refill, and if empty come back when the next token is due.
  tokens_ = std::min(tokens_ + static_cast<double>(now - tokens_at_) * rate_ / 1e9,
                     std::max(1.0, rate_ * 2 * kGrainNs / 1e9));  // burst: two grains' worth
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
  outstanding_[idx]++;
  in_flight_++;
  sched_.at(now + s.s.timeout.count(), idx, kDeadline, seq);
  if (s.to_send > 0) sched_.at(now + s.s.spacing.count(), idx, kSend, s.round_no);
  if (s.addr.ss_family == AF_UNSPEC) return;  // unresolved: the packet simply times out
  const bool v6 = s.addr.ss_family == AF_INET6;
  EchoFields f{ident_[v6], seq, cookie_, idx, sched_.generation(idx), realtime_()};
  OutPacket& out = tx_[tx_n_++];
  out.to = s.addr;
  out.slot = idx;
  out.ok = false;
  build_echo(v6, f, static_cast<std::size_t>(s.s.payload_bytes), out.bytes);  // reuses the buffer
  if (tx_n_ == kBatch) flush();
}

void IcmpEngine::expire(Slot& s, std::uint16_t seq) {
  auto& p = s.pkt(seq);
  if (p.seq != seq || p.state != kPending) return;
  p.state = kExpired;
  if (drops_at_ >= p.sent_mono) s.round_stalled = true;  // its reply may be one the kernel dropped
  outstanding_[s.idx]--;
  in_flight_--;
  maybe_finish_round(s);
}

void IcmpEngine::maybe_finish_round(Slot& s) {
  if (!s.in_round || s.to_send > 0 || outstanding_[s.idx] > 0) return;
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
  // The next extra round, at once: one asked for during this round, or a confirmation while the
  // extra rounds find the device silent. An answer ends the confirmations.
  const bool extra = s.round_extra;
  s.round_extra = false;
  if (got > 0 && extra) s.extra_left = 0;
  if (s.extra_pending || (extra && got == 0 && --s.extra_left > 0)) sched_.at(now_, s.idx, kNow);
  s.extra_pending = false;
  if (s.round_stalled && (n == 0 || got < n)) {  // siteprobe's own stall left it unanswered: no verdict
    m_.stalled_rounds.Increment();
    if (on_round_) on_round_(s.device_index, {static_cast<int>(n), got, 0.0, 0.0, true});
    return;
  }
  s.m->loss.set(n > 0 ? (n - got) / n : 1.0);
  s.m->jitter.set(pairs ? jsum / pairs : 0.0);
  s.m->rtt_mean.set(got ? sum / got : std::nan(""));
  s.m->up.set(got > 0 ? 1 : 0);
  if (on_round_)
    on_round_(s.device_index, {static_cast<int>(n), got, got ? sum / got : 0.0, pairs ? jsum / pairs : 0.0});
}

void IcmpEngine::on_packet(bool ipv6, const std::uint8_t* data, std::size_t len, const sockaddr_storage& src,
                           std::int64_t rx_ns, std::int64_t now) {
  now_ = now;
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
  outstanding_[s.idx]--;
  in_flight_--;
  maybe_finish_round(s);
}

}  // namespace siteprobe::probes
