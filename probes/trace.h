// Path diagnosis (docs/runbook.md#what-the-trace-told-you): one TTL-limited trace
// toward a device, to name the last hop that still answers when its site goes down.
//
// A trace sends `packets_per_hop` echo requests with TTL 1..max_hops at once, on the ICMP prober's
// raw sockets, and reads the ICMP time-exceeded and unreachable messages that quote them, and the
// device's own echo replies. Requests carry their own identifier (not the probes'), and their
// sequence number encodes the trace and the TTL, so an answer is matched from the 8 bytes of our
// header that every router quotes (RFC 792), not from a payload some routers cut.
//
// The path ends at the first TTL the device answered ("reached") or a hop sent unreachable
// ("unreachable"); otherwise after the last hop that answered ("silent"). A result comes once every
// hop up to the end answered, or at the timeout.
//
// PathTracer is the socket-free core on an injected clock; the ICMP prober (probes/icmp_socket.cpp)
// feeds it packets and sends for it. Threading: loop thread only.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "inventory/config.h"

namespace siteprobe::probes {

struct TraceResult {
  std::string key;                // "site/device"
  std::vector<std::string> hops;  // hops[i]: the address that answered TTL i+1, "" if none; up to the end
  int last_hop = 0;               // TTL of the last hop that answered (the device itself if reached)
  std::string last_address;       // its address ("" if no hop answered)
  std::string end;                // "reached", "unreachable", "silent"; "" when the trace failed
  std::string error;              // why it could not run ("no address", "unsupported", "send failed")
};
using TraceDoneFn = std::function<void(const TraceResult&)>;
// Starts a trace to a device (key "site/device"); `done` is always called, at once when the trace
// cannot run (TraceResult::error).
using TraceRequestFn =
    std::function<void(const std::string& key, int max_hops, Duration timeout, TraceDoneFn done)>;

class PathTracer {
 public:
  using SendFn =
      std::function<bool(const sockaddr_storage& to, const std::vector<std::uint8_t>& pkt, int ttl)>;
  using Clock = std::function<std::int64_t()>;  // CLOCK_REALTIME ns, written into payloads
  static constexpr int kMaxHops = 63;           // six bits of the sequence number
  static constexpr int kPacketsPerHop = 2;

  PathTracer(std::uint64_t cookie, SendFn send, Clock realtime)
      : cookie_(cookie), send_(std::move(send)), realtime_(std::move(realtime)) {}
  // The identifier of trace requests for a family; 0 (the default): that family cannot trace (an
  // unprivileged datagram socket: the kernel rewrites identifiers and keeps ICMP errors).
  void set_ident(bool ipv6, std::uint16_t ident) { ident_[ipv6] = ident; }
  void start(const std::string& key, const sockaddr_storage& dst, int max_hops, std::int64_t timeout_ns,
             std::int64_t now, TraceDoneFn done);
  // One received ICMP message (IPv4 header stripped) from `src`: true if it answered a trace.
  bool on_packet(bool ipv6, const std::uint8_t* data, std::size_t len, const sockaddr_storage& src,
                 std::int64_t now);
  void run(std::int64_t now);  // ends the traces whose timeout passed
  std::optional<std::int64_t> next_due() const;
  bool active() const { return !traces_.empty(); }

 private:
  enum Answer : std::uint8_t { kNone = 0, kTimeExceeded, kUnreachable, kReply };
  struct Trace {
    std::uint8_t serial = 0;
    std::string key;
    sockaddr_storage dst{};
    int max_hops = 0;
    std::int64_t deadline = 0;
    std::vector<sockaddr_storage> from;  // per TTL - 1
    std::vector<Answer> answer;
    TraceDoneFn done;
  };
  bool complete(const Trace& t) const;
  void finish(std::size_t i);

  std::uint64_t cookie_;
  SendFn send_;
  Clock realtime_;
  std::uint16_t ident_[2] = {0, 0};
  std::uint8_t serial_ = 0;
  std::vector<Trace> traces_;
  std::vector<std::uint8_t> pkt_;
};

}  // namespace siteprobe::probes
