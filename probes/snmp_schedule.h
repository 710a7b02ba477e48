// When each SNMP device is polled: every `interval` on its splayed grid (probes/scheduler.h: on
// the monotonic clock, so a restart keeps the phase), within the global in-flight cap
// (global.snmp_max_inflight). Devices that are due but over the cap wait in one queue, first come
// first served, so no device starves. Pure: times are nanoseconds handed in by the caller.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "probes/scheduler.h"

namespace siteprobe::probes {

class SnmpSchedule {
 public:
  void set_max_inflight(int n) { max_inflight_ = n; }
  // Adds a device, first due at its first grid point at or after `now_ns`, or updates one: a new
  // interval puts it on that interval's grid. `usm_key` (v3: user@address:port, else empty):
  // net-snmp keeps one USM user per engine and name, process-wide, so two polls of one agent's user
  // with other keys (two profiles, or a wrong passphrase) must not overlap, or one spoils the other.
  void set(const std::string& key, std::int64_t interval_ns, std::int64_t now_ns, const std::string& usm_key);
  // Forgets a device (after its poll, if any, finished).
  void remove(const std::string& key);
  // Queues the devices due by `now_ns` (one start each, however late: the grid points missed are
  // skipped). Returns those still polling or waiting since their last turn: a missed poll.
  std::vector<std::string> advance(std::int64_t now_ns);
  // Queues `key` for a poll now unless it is polling or waiting already; its grid is kept.
  void poll_now(const std::string& key);
  // The first waiting device that may start now (the cap, the USM rule), counted in flight.
  std::optional<std::string> start_next();
  // A device's poll ended: its place in flight is free.
  void finished(const std::string& key);

  // May be early (a removed device's start): advance() then finds nothing.
  std::optional<std::int64_t> next_due() const { return grid_.next_due(); }
  int in_flight() const { return inflight_; }
  std::size_t waiting() const { return waiting_.size(); }

 private:
  struct Entry {
    std::uint32_t slot = 0;
    std::int64_t interval = 0;
    bool busy = false, waiting = false;
    std::string usm_key, usm_busy;  // usm_busy: the key its running poll holds
  };
  Scheduler grid_;
  std::map<std::string, Entry> devs_;
  std::vector<std::string> keys_;  // by slot
  std::deque<std::string> waiting_;
  std::set<std::string> usm_busy_;
  int max_inflight_ = 256, inflight_ = 0;
};

}  // namespace siteprobe::probes
