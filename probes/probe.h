// The interface every probe type implements, and the target description the daemon hands it.
//
// Threading: everything here is called on the loop thread only. A prober owns its sockets, its
// timers and the metric series of its targets; the daemon owns the config and DNS.
#pragma once

#include <netinet/in.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "metrics/series.h"
#include "probes/path_test.h"
#include "probes/scheduler.h"
#include "probes/trace.h"
#include "util/uv_handle.h"

namespace siteprobe::probes {

// Target::device_index when the daemon gave none.
constexpr std::uint32_t kNoDevice = 0xffffffff;

// A device's labels (site, device, role, level and the parent-chain labels), rendered once
// (`a="x",b="y"`) for the probers' series, which hold this rather than a copy. As a map they are
// made when needed (label_map()): 0.5 KB a device held.
struct DeviceLabels {
  explicit DeviceLabels(const prometheus::Labels& l) : text(render_labels(l)) {}
  std::string text;
};

struct Target {
  std::string key;                             // stable identity across reloads: "site/device"
  std::shared_ptr<const DeviceLabels> labels;  // shared by the copies every prober gets
  std::shared_ptr<const Config> config;        // keeps `device` alive
  const Device* device = nullptr;
  const Site* site = nullptr;  // the device's, in `config`
  // The device's address when it is a literal, parsed once by the daemon; AF_UNSPEC for a DNS name
  // (set_address() delivers it once resolved).
  sockaddr_storage address{};
  // The device's dense index in the applied inventory (SiteStates::slot), handed back with each
  // round so the daemon needs no lookup by key. It may change on every reload: set_targets() takes
  // the new one for targets that are kept.
  std::uint32_t device_index = kNoDevice;
  // While > 0, reachability and call-service checks of this device run at least this often (a
  // conference pre-flight: daemon/conference.h), never faster than their own round takes.
  Duration max_interval{0};
};

// The target's labels as a map, for series that add labels of their own.
inline prometheus::Labels label_map(const Target& t) {
  return t.config->device_labels(*t.site, *t.device);
}

// The interval a check runs at: its own, or `cap` when that is shorter, but never below `floor`
// (how long one round or check takes: its timeout).
inline Duration capped_interval(Duration own, Duration floor, Duration cap) {
  return cap.count() > 0 && cap < own ? std::max(cap, floor) : own;
}

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
// `device_index` is the round's Target::device_index as of the last set_targets().
using RoundFn = std::function<void(std::uint32_t device_index, const RoundResult&)>;
// A hint that a round of the device may soon come to RoundFn: its consumers prefetch the state the
// round will touch. Called twice per device: first the state itself, then (`deep`) what it points
// to, so a batch of rounds (a grain's deadlines, a read of 64 replies) waits for its cache misses
// together rather than one at a time. It changes no result.
using PrefetchFn = std::function<void(std::uint32_t device_index, bool deep)>;

// What one call-service check (SIP, H.323, TCP) of a device found.
struct CheckResult {
  std::string service;  // "sip", "h323", or a tcp check's name
  bool up = false;
  std::string detail;  // "200", "503", "connected", "timeout", "refused", ...
  // A call service (readiness counts it): set by the prober from its registry row, never by name.
  bool call_service = false;
};
using CheckFn = std::function<void(const std::string& key, const CheckResult&)>;

// What one SNMP poll of a device found: whether the agent answered, and its uplinks (the
// interfaces matching the device's `uplink` pattern) as of its last answer.
struct SnmpResult {
  bool ok = false;
  std::string error;  // when !ok: the poll's error kind ("timeout", "auth", ...)
  struct Link {
    std::string name;
    int oper = 0;  // ifOperStatus: 1 up, 2 down, ...
    int admin = 0;
    double speed_bps = 0;
  };
  std::vector<Link> uplinks;
};
using SnmpFn = std::function<void(const std::string& key, const SnmpResult&)>;

// An SNMP trap or inform accepted from a device (probes/snmp_trap.h), for the log.
struct TrapEvent {
  std::string site, device, kind, severity, version;
  long if_index = -1;            // linkDown, linkUp: the ifIndex varbind, -1 if none
  std::uint64_t suppressed = 0;  // accepted traps not logged since the last line (log rate limit)
};

// What a probe type's factory gets (probes/registry.h): the loop, the registry for its self
// metrics, where its results go, and a logger (probes sit below daemon/ and cannot include its log).
struct ProbeContext {
  uv_loop_t* loop = nullptr;
  prometheus::Registry* registry = nullptr;
  RoundFn on_round;           // reachability rounds (ICMP): site state and the watchdog
  PrefetchFn prefetch_round;  // before rounds that may come to on_round (optional)
  CheckFn on_check;           // call-service and TCP checks: readiness
  std::function<void(const std::string& msg, const std::string& key, const std::string& value)> log_info;
  PathTestFn on_path_test;                        // path-test results (probes/stamp.h)
  SnmpFn on_snmp;                                 // SNMP polls: the status page's uplink column
  std::function<void(const TrapEvent&)> on_trap;  // accepted SNMP traps: one log line each
  // Asks every type for an extra round of a target now (Prober::probe_now); set by the daemon.
  std::function<void(const std::string& key)> probe_now;
  // Set by the factory of the type that runs path tests: how the daemon asks for them.
  PathTestRequestFn request_path_tests;
  // Set by the ICMP factory: how the daemon asks for a TTL-limited trace (probes/trace.h).
  TraceRequestFn request_trace;
};

class Prober {
 public:
  virtual ~Prober() = default;
  // Replaces the target set: only the devices this type probes (ProbeType::wants). Targets whose
  // key and labels survive keep their schedule, their counters and their histograms; new ones
  // start at a splayed offset in their interval. Global settings (rates and the like) come from
  // `config`. Literal addresses arrive in Target::address.
  virtual void set_targets(const Config& config, const std::vector<Target>& targets) = 0;
  // A resolved DNS name; ss_family AF_UNSPEC means "not resolved" (rounds fail, device down).
  virtual void set_address(const std::string& key, const sockaddr_storage& addr) = 0;
  // Runs one extra round or poll of the target now, unless one is in flight (an SNMP trap came
  // from it: probes/snmp_trap.h). Its grid is kept. Types that have none ignore it.
  virtual void probe_now(const std::string& key) { (void)key; }
  // The per-target series this prober renders on /metrics.
  virtual std::shared_ptr<const Exposition> exposition() const = 0;
  // Stops all I/O and closes every handle; no callback runs afterwards.
  virtual void close() = 0;
};

}  // namespace siteprobe::probes
