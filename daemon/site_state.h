// Topology-aware site state, with Nagios "parents" semantics.
//
// Each device's rounds are damped into ok/failing (down_after consecutive failed rounds to fail,
// up_after good ones to recover) and averaged over a window of rounds (loss, RTT, jitter). A site's
// own status comes from its reachability devices (routers by default): up if any is ok (degraded
// if an ok one is over the loss or RTT threshold), down if all are failing, unknown before that.
// Then the tree decides: a site whose own status is down is `unreachable` when its parent is down
// or unreachable, else `down`. Only the verdict is suppressed; probing and device metrics go on.
//
// The same window gives each device an E-model (ITU-T G.107, simplified) R-factor and MOS, an
// audio-path proxy for the video endpoints.
//
// Devices live in a vector indexed by a dense slot, assigned by configure() in inventory order
// (sites, then their devices); the daemon hands each prober's targets their slot (slot(key)), and
// rounds come back with it, so a round costs no string lookup.
//
// Each site keeps counters of its considered devices (ok, failing, degraded), updated by
// on_round() only when a device's contribution changes, which also puts the site on a dirty list.
// evaluate() re-decides only dirty sites, and the children of every site whose state changed (for
// down vs unreachable), parents first; it never walks the devices. Nothing in the state is driven
// by time (damping counts rounds), so an unchanged site needs no visit.
//
// Threading: on_round() and evaluate() run on the loop; parts() on HTTP threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "inventory/config.h"
#include "metrics/series.h"
#include "probes/probe.h"
#include "util/emodel.h"
#include "util/prefetch.h"

namespace siteprobe {

enum class SiteState { Unknown = 0, Up = 1, Degraded = 2, Down = 3, Unreachable = 4 };
const char* to_string(SiteState s);

// The newest `cap` values pushed, in no particular order, oldest overwritten first. A vector
// sized once: the std::deque it replaced took a 512-byte block per device.
template <typename T>
struct Newest {
  std::vector<T> items;
  std::size_t next = 0;  // the item the next push overwrites once full
  void push(const T& v, std::size_t cap) {
    shrink(cap);
    if (items.size() < cap) {  // not full, or the cap grew: oldest first, then append
      std::rotate(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(next), items.end());
      next = 0;
      if (items.capacity() < cap) items.reserve(cap);
      items.push_back(v);
    } else if (cap > 0) {
      items[next] = v;
      next = (next + 1) % cap;
    }
  }
  void shrink(std::size_t cap) {  // keeps the newest `cap`
    if (items.size() <= cap) return;
    std::rotate(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(next), items.end());
    items.erase(items.begin(), items.end() - static_cast<std::ptrdiff_t>(cap));
    items.shrink_to_fit();
    next = 0;
  }
};

class SiteStates final : public Exposition {
 public:
  using ChangeFn = std::function<void(const Site& site, SiteState from, SiteState to)>;

  explicit SiteStates(ChangeFn on_change)
      : on_change_(std::move(on_change)), quality_(std::make_shared<QualityExposition>()) {}
  // Takes a new inventory, keeping what is known about sites and devices that are still there (a
  // reload must not reset states, damping or change counters).
  void configure(std::shared_ptr<const Config> config);

  // The slot of a device ("site/device") in the current inventory, or kNoSlot. Valid until the next
  // configure(), which may renumber.
  static constexpr std::uint32_t kNoSlot = probes::kNoDevice;
  std::uint32_t slot(const std::string& key) const;
  void on_round(std::uint32_t slot, const probes::RoundResult& r);
  // Prefetches what on_round(slot) touches: the device's track, then (deep) its window and quality
  // series (probes::PrefetchFn).
  void prefetch(std::uint32_t slot, bool deep) const {
    if (slot >= devices_.size()) return;
    const DeviceTrack& t = devices_[slot];
    const auto* p = reinterpret_cast<const char*>(&t);
    if (!deep) {
      siteprobe::prefetch(p);
      siteprobe::prefetch(p + sizeof t - 1);
      return;
    }
    if (!t.window.items.empty()) {
      siteprobe::prefetch(&t.window.items.front());
      siteprobe::prefetch(&t.window.items.back());
    }
    if (t.q) siteprobe::prefetch(&t.q->r);
  }
  // By key, for tests and tools: slot(key), then on_round(slot).
  void on_round(const std::string& key, const probes::RoundResult& r) { on_round(slot(key), r); }
  // Re-decides the sites whose inputs changed since the last call (and their subtrees where a
  // state changed), and re-renders if any state changed.
  void evaluate();
  // Test hook: sites and devices the last evaluate() looked at.
  std::size_t evaluate_visits() const { return visits_; }
  SiteState state(const std::string& site_id) const;
  // Called by evaluate() when a site goes on or off its backup path.
  void on_backup_change(std::function<void(const Site& site, bool on_backup)> f) {
    on_backup_ = std::move(f);
  }
  // Up (or degraded) over a backup uplink; false for a site without backup parents.
  bool on_backup_path(const std::string& site_id) const;
  // An SNMP poll of a device: its uplink interfaces, for the primary uplink of a backed-up site.
  void on_snmp(const std::string& key, const probes::SnmpResult& r);
  // A device's damped ICMP verdict (-1 unknown, 0 failing, 1 ok) and MOS (NaN before its first
  // round), for the endpoint readiness check.
  struct DeviceView {
    int verdict = -1;
    double mos = std::nan("");
  };
  DeviceView device(const std::string& key) const;
  bool vantage_up() const { return vantage_up_; }
  Parts parts() const override { return text_.parts(); }
  std::shared_ptr<const Exposition> quality() const { return quality_; }

 private:
  struct Quality {  // one device's path quality series
    std::size_t pos = 0;
    std::string labels;
    Value r{std::nan("")}, mos{std::nan("")};
  };
  struct QualityExposition final : Exposition {
    SeriesSet<Quality> set;
    Parts parts() const override;
  };
  struct DeviceTrack {
    std::size_t site = 0;
    bool reachability = false;
    int verdict = -1;           // -1 unknown, 0 failing, 1 ok
    bool considered = false;    // counts for its site's own status (reachability rules)
    bool degraded_now = false;  // degraded() as of the last round or configure()
    bool primary_path = false;  // `path: primary`
    bool uplinks_down = false;  // SNMP: every uplink interface down, as of the last answer
    int fails = 0, goods = 0;
    struct Round {  // 12 bytes: a round has at most 100 packets (icmp.packets)
      std::uint16_t attempted, received;
      float rtt_mean, jitter;  // seconds
    };
    Newest<Round> window;
    std::shared_ptr<Quality> q;
    struct Average {
      double loss, rtt, jitter;  // over the window, RTT and jitter weighted by replies
      bool answered;             // any reply in the window
      int attempted;             // requests in the window
    };
    Average average() const;
    bool degraded(const SiteStateSettings& st) const;
    // What this device adds to its site's counters.
    struct Contribution {
      int ok, failing, degraded, primary_failing, uplinks_down;
      bool operator!=(const Contribution& o) const {
        return ok != o.ok || failing != o.failing || degraded != o.degraded ||
               primary_failing != o.primary_failing || uplinks_down != o.uplinks_down;
      }
    };
    Contribution contribution() const {
      const int pf = primary_path && verdict == 0, ud = uplinks_down;
      if (!considered) return {0, 0, 0, pf, ud};
      return {verdict == 1, verdict == 0, verdict == 1 && degraded_now, pf, ud};
    }
  };
  struct SiteTrack {
    SiteState state = SiteState::Unknown;
    std::uint64_t changes = 0;
    double changed_at = 0;                                  // Unix time of the last change; 0 until the first
    std::string labels;                                     // rendered, without `state`
    int ok = 0, failing = 0, degraded = 0, considered = 0;  // over its considered devices
    int primary = 0, primary_failing = 0, uplinks_down = 0;  // `path: primary` devices; SNMP
    bool dirty = false;
    bool top = false;  // no parent
    bool on_backup = false;
    std::vector<std::uint32_t> parents;   // the primary first, then the backups
    std::vector<std::uint32_t> children;  // sites with this one as primary or backup parent
  };
  void add(SiteTrack& s, const DeviceTrack::Contribution& c, int sign);
  void changed(DeviceTrack& t, const DeviceTrack::Contribution& before);

  std::shared_ptr<const Config> config_;
  ChangeFn on_change_;
  std::function<void(const Site& site, bool on_backup)> on_backup_;
  std::vector<DeviceTrack> devices_;                             // by slot
  std::unordered_map<std::string, std::uint32_t> device_index_;  // "site/device" -> slot
  std::vector<SiteTrack> sites_;                                 // parallel to config_->sites
  std::map<std::string, std::size_t> site_index_;
  std::shared_ptr<QualityExposition> quality_;
  std::vector<std::uint32_t> dirty_;  // sites whose counters changed since evaluate()
  bool rerender_ = true;
  std::size_t visits_ = 0;
  std::size_t tops_ = 0, tops_down_ = 0;
  bool vantage_up_ = true;
  StaticText text_;
};

}  // namespace siteprobe
