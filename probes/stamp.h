// STAMP Session-Sender (RFC 8762, unauthenticated; talks to TWAMP-Light reflectors too): the
// path test at a conference's bitrate and QoS class. docs/metrics.md#path-test, docs/inventory.md#stamp.
//
// A path test is one stream to one reflector on a UDP socket of its own, connected to the
// reflector (the kernel drops datagrams from anyone else; an ICMP port unreachable shows up as
// ECONNREFUSED). It first sends three packets 200 ms apart; if none comes back within 1.4 s it
// ends as "no reflector" without loading the path. Otherwise it sends the stream: `bitrate` of
// `packet_size`-byte packets (IP-level bits) marked `dscp`, for `duration`, with a CoS TLV
// (RFC 8972) asking the reflector to mark its replies the same and to say what it received, then
// waits `timeout` for the last replies.
//
// A stall of siteprobe's own loop is not loss: packets not sent on time by more than 20 ms are
// skipped (never sent, never counted), and replies are timestamped by the kernel.
//
// Path tests never run on their own: the daemon asks for them (conference pre-flight, POST
// /-/path-test, `siteprobe path-test`). The prober queues the asked tests under global caps:
// global.path_test_max_kbps over all running streams, global.path_test_streams_per_subtree per
// district (a district's router and its communes share its uplink), and a second between starts.
//
// Threading: loop thread only; the exposition runs on HTTP threads.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "probes/path_test.h"
#include "probes/probe.h"
#include "probes/stamp_packet.h"

namespace siteprobe::probes {

struct StreamSpec {
  sockaddr_storage to{};  // the reflector, with its port
  double bitrate_bps = 2e6;
  std::size_t packet_size = 1200;  // UDP payload bytes
  std::uint8_t dscp = 34;          // AF41
  Duration duration = std::chrono::seconds(20);
  Duration timeout = std::chrono::seconds(2);
  double max_loss = 0.01;
  std::uint16_t ssid = 0;
};
// The spec a device's `stamp` block asks for (its reflector, else `addr`); "" or what is wrong.
std::string stream_spec(const BlockSettings& block, const sockaddr_storage& addr, StreamSpec& out);
// The `stamp` block (the registry row's BlockSchema).
BlockSchema stamp_block();

// What a stream measured, from the packets sent and the replies: no sockets, so unit tests feed it.
class StreamStats {
 public:
  static constexpr std::uint32_t kProbes = 3;  // the low-rate packets that look for the reflector
  // Sequence numbers start at `base` (random by default): a stateless reflector echoes them, a
  // stateful one counts from 0, so the two are told apart even when nothing is lost.
  explicit StreamStats(const StreamSpec& spec, std::uint32_t base);
  std::uint32_t base() const { return base_; }
  void sent(std::uint32_t seq, std::int64_t mono_ns, std::uint64_t ntp);
  // A packet whose send time passed by more than kMaxBehind while the loop was busy: never sent.
  void skipped(std::uint32_t seq);
  // A reply received at `mono_ns` (our clock) / `ntp` (realtime), with the DSCP it arrived with.
  // false if it answers nothing we sent (counted as invalid).
  bool reply(const stamp::ReflectedPacket& r, std::int64_t mono_ns, std::uint64_t ntp, int reply_dscp);
  void invalid() { ++invalid_; }
  void port_closed() { port_closed_ = true; }
  std::uint32_t sent_count() const { return static_cast<std::uint32_t>(slots_.size()); }
  std::uint64_t received() const { return received_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t reordered() const { return reordered_; }
  std::uint64_t invalid_count() const { return invalid_; }
  std::uint64_t skipped_count() const { return skipped_; }
  const std::vector<double>& rtts() const { return rtts_; }
  PathTestSummary summary() const;

 private:
  struct Slot {
    std::int64_t mono_ns = 0;
    std::uint64_t ntp = 0;
    bool got = false, skipped = false;
    std::uint32_t reflector_seq = 0;
    double rtt = 0, forward = 0, reverse = 0;  // forward/reverse: one-way delay plus clock offset
  };
  StreamSpec spec_;
  std::uint32_t base_;
  std::vector<Slot> slots_;
  std::vector<double> rtts_;
  std::uint64_t received_ = 0, duplicates_ = 0, reordered_ = 0, invalid_ = 0, skipped_ = 0;
  std::uint32_t max_seq_ = 0;
  bool any_ = false, port_closed_ = false, stateful_ = false;
  int cos_seen_ = 0, fwd_rewritten_ = 0, rev_checked_ = 0, rev_rewritten_ = 0;
  std::uint8_t fwd_dscp_ = 0, rev_dscp_ = 0;
};

// One running stream. `done` runs once, on the loop, and may destroy the stream.
class StampStream {
 public:
  using DoneFn = std::function<void(const PathTestSummary&, const StreamStats&)>;
  StampStream(uv_loop_t* loop, const StreamSpec& spec, DoneFn done);
  ~StampStream();
  StampStream(const StampStream&) = delete;
  StampStream& operator=(const StampStream&) = delete;
  // Opens the socket and starts; "" or the error (then `done` never runs).
  std::string start();

 private:
  void tick() noexcept;
  void arm(std::int64_t due_ns);
  void readable() noexcept;
  void finish() noexcept;
  bool send(std::uint32_t seq, std::int64_t now);

  uv_loop_t* loop_;
  StreamSpec spec_;
  DoneFn done_;
  StreamStats stats_;
  int fd_ = -1;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> timer_;
  std::int64_t start_ns_ = 0, stream_start_ns_ = 0, end_ns_ = 0, interval_ns_ = 0;
  std::uint32_t next_ = 0, total_ = 0;
  std::vector<unsigned char> buf_;
};

std::unique_ptr<Prober> make_stamp_prober(ProbeContext& ctx);

}  // namespace siteprobe::probes
