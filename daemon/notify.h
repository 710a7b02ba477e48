// systemd's service notification protocol (sd_notify(3)) without libsystemd: each message is one
// datagram to the AF_UNIX socket named by $NOTIFY_SOCKET ("@name" for the abstract namespace).
// Everything here is a no-op when siteprobe does not run under a Type=notify unit.
//
// Watchdog sends WATCHDOG=1 every WATCHDOG_USEC/2 from the loop, but only while probing makes
// progress: a probe round completed within `stall_after` (or there is nothing to probe). A blocked
// loop or a prober that stopped completing rounds both stop the pings, and systemd restarts the
// service after WatchdogSec=.
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "util/uv_handle.h"

namespace siteprobe {

// Sends `state` (e.g. "READY=1", "RELOADING=1\nMONOTONIC_USEC=...") to the service manager.
void notify(const std::string& state);
// "MONOTONIC_USEC=<CLOCK_MONOTONIC now>", which systemd >= 253 wants next to RELOADING=1.
std::string monotonic_usec();

class Watchdog {
 public:
  using Clock = std::function<std::uint64_t()>;  // milliseconds, monotonic
  // `clock` defaults to the loop's (uv_now); tests inject their own and call tick().
  explicit Watchdog(Clock clock = {}) : clock_(std::move(clock)) {}
  // Starts the pings if $WATCHDOG_USEC is set (and $WATCHDOG_PID, if set, is this process).
  void start(uv_loop_t* loop);
  // A probe round completed.
  void progress() { last_progress_ = now(); }
  // After each inventory load: how long probing may go without a completed round (0 = nothing
  // to probe, always healthy). Restarts the grace period.
  void expect(std::uint64_t stall_after_ms);
  // One period: pings unless probing is stuck. Returns whether it pinged.
  bool tick();
  void close() { timer_.reset(); }
  std::uint64_t pings() const { return pings_; }

 private:
  std::uint64_t now() const { return clock_ ? clock_() : loop_ ? uv_now(loop_) : 0; }

  Clock clock_;
  uv_loop_t* loop_ = nullptr;
  UvHandle<uv_timer_t> timer_;
  std::uint64_t last_progress_ = 0, stall_after_ms_ = 0, pings_ = 0;
};

}  // namespace siteprobe
