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
#include "probes/scheduler.h"
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

}  // namespace siteprobe::probes
