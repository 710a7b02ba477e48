// The live status page's data (issue #18; docs/dashboards.md#status-page).
//
// StatusBoard lives on the loop: it keeps a last-hour history per device (DeviceHistory: 60
// one-minute points of loss and RTT, ~0.26 KB a device, ~2.5 MB at 10k devices), the last state changes
// with their reasons, and once a second (publish(), after SiteStates::evaluate and
// Readiness::evaluate) it builds an immutable Snapshot: the tree (sites, coordinates; rebuilt only on
// configure), the live JSON (states, counts, changes, readiness), and per site the device rows
// (rebuilt only for sites that had rounds or checks). HTTP threads only take the current snapshot's
// shared_ptr under a mutex and read it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/readiness.h"
#include "daemon/site_state.h"
#include "inventory/config.h"
#include "probes/probe.h"
#include "util/prefetch.h"

namespace siteprobe {

// Unix time in seconds (the page shows wall-clock times).
inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Last hour of one device: 60 one-minute buckets of loss and mean RTT, oldest overwritten.
class DeviceHistory {
 public:
  static constexpr std::size_t kPoints = 60;
  static constexpr std::uint16_t kNoData = 0xFFFF;
  // A round at Unix minute `minute` (rounds must come in non-decreasing minutes; earlier ones count
  // in the current bucket).
  void add(const probes::RoundResult& r, std::int64_t minute);
  // The kPoints minutes ending at `now_minute`, oldest first: loss in 1/100 % (kNoData: none),
  // RTT in ms (NaN: no reply that minute).
  void points(std::int64_t now_minute, std::array<std::uint16_t, kPoints>& loss,
              std::array<float, kPoints>& rtt) const;

 private:
  void close_bucket();
  // RTT in tenths of a ms (what the page shows), at most 6553.4 ms; kNoData: no reply.
  static std::uint16_t tenths(float ms) {
    return static_cast<std::uint16_t>(std::clamp(ms * 10 + 0.5F, 0.F, 65534.F));
  }
  // What every round writes first (StatusBoard::prefetch).
  std::int64_t minute_ = -1;  // the bucket being filled; -1 before the first round
  std::uint32_t attempted_ = 0, received_ = 0;
  float rtt_sum_ = 0;  // ms, weighted by replies
  std::array<std::uint16_t, kPoints> loss_{};
  std::array<std::uint16_t, kPoints> rtt_{};
};

class StatusBoard {
 public:
  static constexpr std::size_t kMaxChanges = 50;
  struct Change {
    double at = 0;             // Unix time
    std::string site, device;  // device "" for a site's change
    std::string from, to;      // state names ("up", ...), or "up"/"down" for a service
    std::string why;           // a key: why.parent_down, why.loss, ...
    std::string arg;           // "40 %", "SIP 503", ...
  };
  struct DeviceRow {
    std::string name, role;
    int verdict = -1;                                  // -1 unknown, 0 down, 1 up
    double loss = NAN, rtt_ms = NAN, jitter_ms = NAN;  // last round
    std::string readiness, readiness_detail;           // endpoints only: Readiness::name
    bool snmp = false;                                 // polled over SNMP (at least once)
    std::string snmp_error;                            // the last poll's error, "" if it answered
    std::vector<probes::SnmpResult::Link> uplinks;     // as of the last answer
    std::array<std::uint16_t, DeviceHistory::kPoints> loss_hist{};
    std::array<float, DeviceHistory::kPoints> rtt_hist{};
  };
  struct Snapshot {
    std::uint64_t gen = 0;  // the inventory generation: the tree changes only with it
    std::string tree;       // JSON
    std::string live;       // JSON
    std::map<std::string, std::size_t> site_index;
    std::vector<std::shared_ptr<const std::vector<DeviceRow>>> devices;  // parallel to the tree's sites
  };

  // All on the loop thread.
  void configure(std::shared_ptr<const Config> config, const SiteStates& states);
  void on_round(std::uint32_t slot, const probes::RoundResult& r, double now);
  // Prefetches what on_round(slot) touches (probes::PrefetchFn; nothing is behind a pointer).
  void prefetch(std::uint32_t slot, bool deep) const {
    if (deep || slot >= devs_.size()) return;
    const Dev& d = devs_[slot];
    siteprobe::prefetch(&d);
    siteprobe::prefetch(&d.jitter_ms);
    siteprobe::prefetch(reinterpret_cast<const char*>(&d.hist) + 23);  // its counters
  }
  void on_check(const std::string& key, const probes::CheckResult& c, double now);
  void on_snmp(const std::string& key, const probes::SnmpResult& r, double now);
  void on_site_change(const Site& site, SiteState from, SiteState to, double now);
  // A site with backup parents went on (or off) its backup uplink (daemon/site_state.h).
  void on_backup_path(const Site& site, bool on, double now) {
    add_change({now, site.id, "", "up", "up", on ? "why.backup_path" : "why.primary_path", ""});
  }
  void publish(const SiteStates& states, const Readiness& readiness, double now);

  // Any thread. Reading marks the page as watched: publish() builds snapshots only while someone
  // has read one in the last kWatched (and once after each configure()), so an unwatched page costs
  // the loop nothing; above kRowsAlways devices it also holds no device rows then (0.6 KB a device),
  // only the history ring (a 3,000-device ASan build starved to 10 % of a core
  // stalled on the per-second rebuild: integration.icmp_stall).
  static constexpr std::int64_t kWatchedNs = 30LL * 1000 * 1000 * 1000;
  // Up to this many devices the rows are kept unwatched too (6 MB at most), so a script's single
  // GET of /status/site.json finds them.
  static constexpr std::size_t kRowsAlways = 10000;
  explicit StatusBoard(std::int64_t watched_ns = kWatchedNs, std::size_t rows_always = kRowsAlways)
      : watched_ns_(watched_ns), rows_always_(rows_always) {}
  std::shared_ptr<const Snapshot> snapshot() const {
    read_ns_.store(steady_ns(), std::memory_order_relaxed);
    return snapshot_unmarked();
  }
  // The JSON of one site's devices ("" if there is no such site).
  static std::string site_json(const Snapshot& s, const std::string& site_id);

 private:
  struct Dev {  // what on_round() reads and writes first (prefetch())
    std::size_t site = 0;
    const Device* device = nullptr;
    double loss = NAN, rtt_ms = NAN, jitter_ms = NAN;
    DeviceHistory hist;
    bool endpoint = false;
    std::string key;
    std::map<std::string, bool> service_up;    // by service name
    std::unique_ptr<probes::SnmpResult> snmp;  // the last poll; null before the first
  };
  void add_change(Change c);
  std::shared_ptr<const Snapshot> snapshot_unmarked() const {
    std::lock_guard<std::mutex> l(mu_);
    return snap_;
  }

  std::shared_ptr<const Config> config_;
  std::uint64_t gen_ = 0;
  std::vector<Dev> devs_;                                  // by SiteStates slot
  std::unordered_map<std::string, std::uint32_t> by_key_;  // "site/device" -> slot
  std::vector<std::vector<std::uint32_t>> site_devs_;      // per site: its slots
  std::vector<bool> dirty_;                                // per site: rows to rebuild
  std::map<std::string, std::size_t> site_index_;
  std::deque<Change> changes_;  // newest first
  std::string tree_;
  std::vector<std::shared_ptr<const std::vector<DeviceRow>>> rows_;

  static std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  const std::int64_t watched_ns_;
  const std::size_t rows_always_;
  mutable std::atomic<std::int64_t> read_ns_{0};
  bool published_ = false;  // since the last configure()

  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snap_ = std::make_shared<Snapshot>();
};

}  // namespace siteprobe
