// STAMP Session-Reflector (RFC 8762, unauthenticated, with RFC 8972 TLVs): `siteprobe reflect`,
// for a site whose router cannot reflect (a small Linux box at a commune).
// docs/runbook.md#path-tests-and-the-reflector.
//
// Each reply has the length of the packet it answers (never more: no amplification), leaves
// from the address the packet came to, carries the DSCP a Class-of-Service TLV asks for (else the
// DSCP received) and says in that TLV what DSCP and ECN arrived. Stateless mode copies the
// sender's sequence number; stateful mode numbers each session (address, port, SSID) itself, so
// the sender can tell forward from reverse loss. Sessions are bounded (kMaxSessions, idle ones
// expire after a minute) and so is the rate (max_pps, a token bucket): beyond either, the packet
// is still answered statelessly, or dropped and counted. A datagram that is no test packet is
// counted and dropped. Threading: loop thread only; the exposition runs on HTTP threads.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "metrics/series.h"
#include "util/uv_handle.h"

namespace siteprobe::probes {

class StampReflector {
 public:
  static constexpr std::size_t kMaxSessions = 4096;
  struct Options {
    std::vector<std::string> listen = {"0.0.0.0:862", "[::]:862"};
    bool stateful = false;
    double max_pps = 50000;
  };
  StampReflector(uv_loop_t* loop, Options o);
  ~StampReflector();
  StampReflector(const StampReflector&) = delete;
  StampReflector& operator=(const StampReflector&) = delete;
  // Binds every listen address; "" or the errors. An IPv6 address that cannot be bound because
  // the host has no IPv6 is skipped with a warning in `warnings` if another address is bound.
  std::string start(std::string* warnings = nullptr);
  std::shared_ptr<const Exposition> exposition() const;
  // The ports bound, in order of `listen` (for tests that bind port 0).
  std::vector<int> ports() const;

 private:
  struct Socket;
  struct Session {
    std::uint32_t next = 0;
    std::int64_t last_ns = 0;
  };
  struct Expo;
  void readable(Socket& s) noexcept;
  bool admit(std::int64_t now);
  std::uint32_t reflector_seq(const sockaddr_storage& from, std::uint16_t ssid, std::uint32_t sender_seq,
                              std::int64_t now);

  uv_loop_t* loop_;
  Options opt_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::unordered_map<std::string, Session> sessions_;
  std::int64_t last_sweep_ = 0;
  double tokens_ = 0;
  std::int64_t tokens_at_ = 0;
  std::shared_ptr<Expo> expo_;
  std::vector<unsigned char> in_, out_;
};

}  // namespace siteprobe::probes
