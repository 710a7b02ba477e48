// The interface every probe type implements, and the target description the daemon hands it.
//
// Threading: everything here is called on the loop thread only. A prober owns its sockets, its
// timers and the metric series of its targets; the daemon owns the config and DNS.
#pragma once

#include <netinet/in.h>
#include <prometheus/labels.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "metrics/series.h"
#include "util/uv_handle.h"

namespace siteprobe::probes {

struct Target {
  std::string key;                       // stable identity across reloads: "site/device"
  prometheus::Labels labels;             // site, device, role, level and the parent-chain labels
  std::shared_ptr<const Config> config;  // keeps `device` alive
  const Device* device = nullptr;
};

// What one completed round of a target measured.
// How late a timer may run before a probe engine reads its sockets first (IcmpEngine::run).
constexpr std::int64_t kLateNs = 2000000;

struct RoundResult {
  int attempted = 0, received = 0;
  double rtt_mean = 0, jitter = 0;  // seconds; meaningful only if received > 0
  // The prober cannot tell: the kernel dropped replies while this round was in flight because
  // siteprobe did not read them in time (its own stall). Neither loss nor down.
  bool stalled = false;
};
using RoundFn = std::function<void(const std::string& key, const RoundResult&)>;

// What one call-service check (SIP, H.323, TCP) of a device found.
struct CheckResult {
  std::string service;  // "sip", "h323", or a tcp check's name
  bool up = false;
  std::string detail;  // "200", "503", "connected", "timeout", "refused", ...
};
using CheckFn = std::function<void(const std::string& key, const CheckResult&)>;

class Prober {
 public:
  virtual ~Prober() = default;
  // Called on the loop after each completed round of a target.
  virtual void on_round(RoundFn fn) = 0;
  // Called on the loop after each completed check (call-service probers only).
  virtual void on_check(CheckFn) {}
  // Replaces the target set. Targets whose key and labels survive keep their schedule, their
  // counters and their histograms; new ones start at a splayed offset in their interval.
  // Global settings (rates and the like) come from `config`.
  virtual void set_targets(const Config& config, const std::vector<Target>& targets) = 0;
  // Sets the address to probe; ss_family AF_UNSPEC means "not resolved" (rounds fail, device down).
  virtual void set_address(const std::string& key, const sockaddr_storage& addr) = 0;
  // The per-target series this prober renders on /metrics.
  virtual std::shared_ptr<const Exposition> exposition() const = 0;
  // Stops all I/O and closes every handle; no callback runs afterwards.
  virtual void close() = 0;
};

// Deterministic start offset of a target within its interval, from a hash of its key, so start
// times spread evenly and stay put across reloads and restarts.
std::int64_t splay_offset_ns(const std::string& key, std::int64_t interval_ns);

// Puts a new Slot at a free index of `slots` (one released into `free`, or a new one at the end)
// and returns that index. Engines address slots by index in packets and events, so indexes stay
// stable; the caller gives each new occupant a fresh generation to tell stale events apart.
template <class Slot>
std::uint32_t new_slot(std::vector<std::unique_ptr<Slot>>& slots, std::vector<std::uint32_t>& free) {
  std::uint32_t idx;
  if (!free.empty()) {
    idx = free.back();
    free.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(slots.size());
    slots.emplace_back();
  }
  slots[idx] = std::make_unique<Slot>();
  return idx;
}

// Runs a scheduling engine (next_due() and run(now), times from uv_hrtime) on a libuv loop with
// one timer, re-armed after every run; a prober calls arm() again whenever its engine's next due
// time may have moved. The timer is closed by close() or the destructor, and freed in its close
// callback (UvHandle). Neither copyable nor movable: the timer's `data` points at this object.
template <class Engine>
class EngineTimer {
 public:
  EngineTimer(uv_loop_t* loop, Engine& engine) : engine_(engine) {
    uv_must(timer_.init([loop](uv_timer_t* t) { return uv_timer_init(loop, t); }), "uv_timer_init");
    timer_.get()->data = this;
  }
  EngineTimer(const EngineTimer&) = delete;
  EngineTimer& operator=(const EngineTimer&) = delete;

  void arm() {
    if (!timer_) return;
    const auto due = engine_.next_due();
    if (!due) {
      uv_must(uv_timer_stop(timer_.get()), "uv_timer_stop");
      return;
    }
    // At least 1 ms: libuv (1.44) runs a timer started with 0 ms again in the same pass (it compares
    // with the loop time of the pass's start), so an engine behind its schedule (100k targets) would
    // starve I/O, signals and every other timer for as long as it stays behind.
    const auto now = static_cast<std::int64_t>(uv_hrtime());
    const auto ms = *due > now ? static_cast<std::uint64_t>((*due - now + 999999) / 1000000) : 1;
    uv_must(uv_timer_start(timer_.get(), on_timer, ms, 0), "uv_timer_start");
  }
  void close() { timer_.reset(); }

 private:
  static void on_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<EngineTimer*>(t->data);
    self->engine_.run(static_cast<std::int64_t>(uv_hrtime()));
    self->arm();
  }

  Engine& engine_;
  UvHandle<uv_timer_t> timer_;
};

}  // namespace siteprobe::probes
