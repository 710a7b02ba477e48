// ICMP echo prober: one socket per address family for all targets.
//
// Each target runs rounds: every `interval`, `packets` echo requests `spacing` apart, each with a
// `timeout`. A request carries in its payload a per-process random cookie, the target's slot and
// generation, and the send time, so a reply is matched in O(1) without a global sequence map, and
// checked against the slot's sequence ring and the target's address. Receive times come from the
// kernel (SO_TIMESTAMPNS). A round ends when every request is answered or timed out; then the
// last-round gauges (loss, jitter, mean RTT, up) are set.
//
// IcmpEngine is the socket-free core (scheduling, matching, bookkeeping) driven by an explicit
// clock, so it is unit-tested without sleeping. make_icmp_prober() wraps it in libuv handles.
// Threading: loop thread only.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <uv.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "metrics/series.h"
#include "probes/probe.h"

namespace siteprobe::probes {

// ICMP message types (RFC 792, RFC 4443).
constexpr std::uint8_t kV4EchoRequest = 8, kV4EchoReply = 0, kV4Unreach = 3, kV4TimeExceeded = 11;
constexpr std::uint8_t kV6EchoRequest = 128, kV6EchoReply = 129, kV6Unreach = 1, kV6TimeExceeded = 3;

// ---- Packet format -------------------------------------------------------------------------
constexpr std::size_t kIcmpHeader = 8;
constexpr std::size_t kPayloadMin = 24;  // cookie(8) slot(4) generation(4) send time(8)

struct EchoFields {
  std::uint16_t ident = 0, seq = 0;
  std::uint64_t cookie = 0;
  std::uint32_t slot = 0, generation = 0;
  std::int64_t send_ns = 0;  // CLOCK_REALTIME
};

// Builds an echo request of kIcmpHeader + payload_bytes into `out`. For IPv4 the checksum is
// filled in; for IPv6 the kernel computes it.
std::vector<std::uint8_t> build_echo(bool ipv6, const EchoFields& f, std::size_t payload_bytes);
void build_echo(bool ipv6, const EchoFields& f, std::size_t payload_bytes, std::vector<std::uint8_t>& out);

enum class IcmpKind { EchoReply, Unreachable, TimeExceeded, Other, Truncated };

struct ParsedIcmp {
  IcmpKind kind = IcmpKind::Other;
  bool has_fields = false;  // echo fields decoded (from the reply, or from the quoted request)
  bool has_header = false;  // errors: the quoted request's identifier and sequence (fields.ident, seq)
  EchoFields fields;
  sockaddr_storage quoted_dst{};  // for errors: destination of the quoted request, if present
};

// Parses one ICMP message that starts at the ICMP header (IPv4 header already stripped).
ParsedIcmp parse_icmp(bool ipv6, const std::uint8_t* data, std::size_t len);
// The slot and sequence an echo reply names, read as parse_icmp() would, unchecked (a prefetch hint).
bool peek_echo_slot(bool ipv6, const std::uint8_t* data, std::size_t len, std::uint32_t& slot,
                    std::uint16_t& seq);
// Length of the IPv4 header at `data`, or 0 if it is not a valid one.
std::size_t ipv4_header_len(const std::uint8_t* data, std::size_t len);

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b);

// ---- Metrics --------------------------------------------------------------------------------
// One device's series, rendered by IcmpExposition.
struct IcmpSeries {
  IcmpSeries(std::shared_ptr<const DeviceLabels> l, const std::vector<double>& rtt_bounds)
      : device(std::move(l)), labels(device->text), rtt(rtt_bounds) {}
  std::size_t pos = 0;  // in the SeriesSet
  std::shared_ptr<const DeviceLabels> device;
  const std::string& labels;  // device->text
  Count sent, received, duplicates, late, err_unreach, err_ttl;
  Histogram rtt;
  Value loss{std::nan("")}, jitter{std::nan("")}, rtt_mean{std::nan("")}, up;  // NaN: no round yet
};

class IcmpExposition final : public Exposition {
 public:
  Parts parts() const override;
  SeriesSet<IcmpSeries> series;
};

// ICMP metrics that are not per device, in the registry.
struct IcmpFamilies {
  explicit IcmpFamilies(prometheus::Registry& r);
  prometheus::Family<prometheus::Counter>& invalid;      // label reason
  prometheus::Family<prometheus::Counter>& rx_drops;     // label family
  prometheus::Family<prometheus::Counter>& send_errors;  // label family
  prometheus::Family<prometheus::Gauge>& in_flight;      // label probe
  prometheus::Counter &invalid_cookie, &invalid_source, &invalid_truncated, &invalid_unknown;
  prometheus::Counter *rx_drops_v4, *rx_drops_v6, *send_errors_v4, *send_errors_v6;
  prometheus::Gauge& in_flight_icmp;
  prometheus::Counter& stalled_rounds;
};

// ---- Engine ----------------------------------------------------------------------------------
class IcmpEngine {
 public:
  // One echo request of a send batch; the SendFn sets `ok` if it went out.
  struct OutPacket {
    sockaddr_storage to{};
    std::vector<std::uint8_t> bytes;
    std::uint32_t slot = 0;
    bool ok = false;
  };
  // Sends packets [0, n) of a batch (one sendmmsg per address family), setting each one's `ok`.
  using SendFn = std::function<void(OutPacket* batch, std::size_t n)>;
  // Sends are gathered and go out together at the end of run() (or when kBatch are waiting).
  static constexpr std::size_t kBatch = 64;
  // The prober's timer wakes on this grid (EngineTimer): starts, sends and deadlines due within it
  // are handled together. RTTs are unaffected (kernel timestamps); a verdict may come 10 ms later.
  static constexpr std::int64_t kGrainNs = 10'000'000;
  using Clock = std::function<std::int64_t()>;  // CLOCK_REALTIME ns, written into payloads

  IcmpEngine(IcmpFamilies& m, IcmpExposition& x, std::uint64_t cookie, SendFn send, Clock realtime);
  ~IcmpEngine();

  void set_rate(double packets_per_second) { rate_ = packets_per_second; }
  void on_round(RoundFn fn) { on_round_ = std::move(fn); }
  void prefetch_round(PrefetchFn fn) { prefetch_round_ = std::move(fn); }
  // Reads every reply already queued on the sockets. run() calls it before any deadline expires:
  // libuv runs timers before I/O, so after a stall the replies waiting in the socket (on time by
  // their kernel timestamps) would otherwise count as lost.
  void set_drain(std::function<void()> fn) { drain_ = std::move(fn); }
  // The kernel dropped replies (receive queue full) at monotonic time `now`: rounds in flight then
  // cannot be judged, and end as stalled instead of lost.
  void drops_seen(std::int64_t now) { drops_at_ = now; }
  void set_ident(bool ipv6, std::uint16_t ident) { ident_[ipv6] = ident; }
  void set_targets(const std::vector<Target>& targets, std::int64_t now);
  void set_address(const std::string& key, const sockaddr_storage& addr);
  // A target's address (AF_UNSPEC while unresolved), or nullopt for an unknown key.
  std::optional<sockaddr_storage> address(const std::string& key) const;
  // Starts an extra round of `key` at `now`, or as soon as the round in flight ends; while extra
  // rounds find the device silent, up to set_confirm_rounds() of them run back to back, so a dead
  // device is confirmed down without waiting for its grid, which is kept.
  void probe_now(const std::string& key, std::int64_t now);
  void set_confirm_rounds(int n) { confirm_rounds_ = std::max(1, n); }
  // Runs every event due at `now` (monotonic ns).
  void run(std::int64_t now);
  // Monotonic ns of the next event, or nullopt if none.
  std::optional<std::int64_t> next_due() const;
  // One received ICMP message (IPv4 header stripped). rx_ns is the kernel receive time
  // (CLOCK_REALTIME), now the monotonic time.
  void on_packet(bool ipv6, const std::uint8_t* data, std::size_t len, const sockaddr_storage& src,
                 std::int64_t rx_ns, std::int64_t now);
  // Prefetches what on_packet() will read for a batch of received messages (as on_packet() takes
  // them), before any is handled: at 10k targets each reply's target state is a cache miss, and
  // waiting for them together rather than one at a time halves the engine's cost per probe.
  void prefetch(bool ipv6, const std::uint8_t* const* data, const std::size_t* len, std::size_t n) const;
  std::size_t in_flight() const { return in_flight_; }
  // Sets the in-flight gauge (once a batch, not once a packet): run() does at its end, the socket
  // after each batch of replies it reads.
  void publish();
  std::size_t size() const { return by_key_.size(); }
  // The series of a target, or null.
  std::shared_ptr<const IcmpSeries> series(const std::string& key) const;

 private:
  struct Slot;
  enum Ev : std::uint8_t { kSend = 1, kDeadline, kNow };  // and Scheduler::kStart: a round

  void handle(const Scheduler::Event& e, std::int64_t now);
  // The stages of prefetching a slot's state: the slot itself, then what it points to, then the
  // RTT histogram's buckets (and the device's state in the on_round consumers, in two stages).
  void prefetch(const Slot* s, int stage, int seq) const;
  void start_round(Slot& s, std::int64_t now);
  void send_next(Slot& s, std::int64_t now);
  void expire(Slot& s, std::uint16_t seq);
  void maybe_finish_round(Slot& s);
  void remove_slot(std::uint32_t idx);
  void flush();

  IcmpFamilies& m_;
  IcmpExposition& x_;
  std::uint64_t cookie_;
  SendFn send_;
  Clock realtime_;
  std::vector<OutPacket> tx_ = std::vector<OutPacket>(kBatch);  // buffers reused
  std::size_t tx_n_ = 0;
  RoundFn on_round_;
  PrefetchFn prefetch_round_;
  std::function<void()> drain_;
  std::int64_t drops_at_ = -1;
  std::uint16_t ident_[2] = {0, 0};
  std::vector<std::unique_ptr<Slot>> slots_;  // index = slot id in payloads; null = free
  std::unordered_map<std::string, std::uint32_t> by_key_;
  Scheduler sched_;
  std::vector<Scheduler::Event> due_;  // run()'s batch, reused
  std::size_t in_flight_ = 0, published_ = 0;
  // Per slot, dense (a deadline checks it without loading the slot): packets in flight.
  std::vector<std::uint32_t> outstanding_;
  int confirm_rounds_ = 2;  // site_state.down_after
  std::int64_t now_ = 0;    // the last monotonic time run() or on_packet() was given
  // Token bucket pacing all sends.
  double rate_ = 20000, tokens_ = 0;
  std::int64_t tokens_at_ = 0;
};

// Binds an unprivileged (datagram) ICMP socket of family `af` and reads back the echo identifier
// the kernel gave it (its "port"): the kernel rewrites the identifier of every request sent on such
// a socket, so replies can only be matched with this one. Returns 0, or the errno of bind() or
// getsockname() (EADDRNOTAVAIL if the identifier came back 0).
int bind_icmp_ident(int fd, int af, std::uint16_t& ident);

// Opens the ICMP sockets (raw if permitted, else unprivileged datagram), logs which it got and
// returns a prober running on the context's loop. Throws ProbeError when no IPv4 ICMP socket can be
// opened (or bound, for a datagram socket: without its identifier no reply would ever match).
std::unique_ptr<Prober> make_icmp_prober(ProbeContext& ctx);

}  // namespace siteprobe::probes
