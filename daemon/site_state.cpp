#include "daemon/site_state.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "metrics/families.h"

namespace siteprobe {

const char* to_string(SiteState s) {
  switch (s) {
    case SiteState::Up:
      return "up";
    case SiteState::Degraded:
      return "degraded";
    case SiteState::Down:
      return "down";
    case SiteState::Unreachable:
      return "unreachable";
    case SiteState::Unknown:
      break;
  }
  return "unknown";
}

SiteStates::DeviceTrack::Average SiteStates::DeviceTrack::average() const {
  int att = 0, rec = 0;
  double rtt = 0, jitter = 0;
  for (const auto& w : window.items) {
    att += w.attempted;
    rec += w.received;
    rtt += static_cast<double>(w.rtt_mean) * w.received;
    jitter += static_cast<double>(w.jitter) * w.received;
  }
  if (rec == 0) return {att == 0 ? 0.0 : 1.0, 0, 0, false, att};
  return {1.0 - static_cast<double>(rec) / att, rtt / rec, jitter / rec, true, att};
}

// Loss counts once the window holds at least 1/degraded_loss requests, so that one lost packet
// alone (say 1 of the first round's 5) never makes a site degraded.
bool SiteStates::DeviceTrack::degraded(const SiteStateSettings& st) const {
  const Average a = average();
  const bool lossy =
      a.loss > st.degraded_loss && (st.degraded_loss == 0 || a.attempted * st.degraded_loss >= 1);
  return a.answered && (lossy || a.rtt > std::chrono::duration<double>(st.degraded_rtt).count());
}

void SiteStates::add(SiteTrack& s, const DeviceTrack::Contribution& c, int sign) {
  s.ok += sign * c.ok;
  s.failing += sign * c.failing;
  s.degraded += sign * c.degraded;
  s.primary_failing += sign * c.primary_failing;
  s.uplinks_down += sign * c.uplinks_down;
}

// After a device's contribution may have changed: moves it in its site's counters and marks the
// site for evaluate().
void SiteStates::changed(DeviceTrack& t, const DeviceTrack::Contribution& before) {
  const DeviceTrack::Contribution after = t.contribution();
  if (!(after != before)) return;
  SiteTrack& s = sites_[t.site];
  add(s, before, -1);
  add(s, after, 1);
  if (!s.dirty) {
    s.dirty = true;
    dirty_.push_back(static_cast<std::uint32_t>(t.site));
  }
}

void SiteStates::configure(std::shared_ptr<const Config> config) {
  std::vector<DeviceTrack> devices;
  std::unordered_map<std::string, std::uint32_t> device_index;
  std::vector<SiteTrack> sites(config->sites.size());
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < config->sites.size(); ++i) {
    const Site& s = config->sites[i];
    index[s.id] = i;
    sites[i].labels = render_labels(config->site_labels(s));
    if (auto old = site_index_.find(s.id);
        old != site_index_.end() && sites_[old->second].labels == sites[i].labels) {
      sites[i].state = sites_[old->second].state;
      sites[i].changes = sites_[old->second].changes;
      sites[i].changed_at = sites_[old->second].changed_at;
      sites[i].on_backup = sites_[old->second].on_backup;
    }
    for (const auto& d : s.devices) {
      const std::string key = Config::device_key(s, d);
      DeviceTrack t;
      if (auto old = device_index_.find(key); old != device_index_.end()) {
        t = std::move(devices_[old->second]);
        device_index_.erase(old);  // what is left over is gone
      }
      t.site = i;
      t.reachability = d.reachability;
      t.primary_path = d.primary_path;
      if (s.backup_parents.empty()) t.uplinks_down = false;
      sites[i].primary += d.primary_path;
      const std::string labels = render_labels(config->device_labels(s, d));
      if (!t.q || t.q->labels != labels) {
        if (t.q) quality_->set.remove(t.q);
        t.q = std::make_shared<Quality>();
        t.q->labels = labels;
        quality_->set.add(t.q);
      }
      // A smaller window keeps the newest rounds: MOS and degraded are about the recent path.
      t.window.shrink(static_cast<std::size_t>(config->site_state.window));
      device_index[key] = static_cast<std::uint32_t>(devices.size());
      devices.push_back(std::move(t));
    }
  }
  for (const auto& [key, slot] : device_index_)
    if (devices_[slot].q) quality_->set.remove(devices_[slot].q);
  // The counters, from scratch: reachability rules and thresholds may have changed.
  std::vector<int> reach(sites.size(), 0);
  for (const auto& t : devices) reach[t.site] += t.reachability;
  for (auto& t : devices) {
    t.considered = reach[t.site] == 0 || t.reachability;
    t.degraded_now = t.degraded(config->site_state);
    sites[t.site].considered += t.considered;
    add(sites[t.site], t.contribution(), 1);
  }
  tops_ = tops_down_ = 0;
  dirty_.clear();
  for (std::uint32_t i = 0; i < sites.size(); ++i) {
    const Site& s = config->sites[i];
    sites[i].dirty = true;
    dirty_.push_back(i);
    sites[i].top = s.parent.empty();
    if (sites[i].top) {
      tops_++;
      tops_down_ += sites[i].state == SiteState::Down;
    } else {
      sites[i].parents.push_back(static_cast<std::uint32_t>(index.at(s.parent)));
      for (const auto& b : s.backup_parents)
        sites[i].parents.push_back(static_cast<std::uint32_t>(index.at(b)));
      for (std::uint32_t p : sites[i].parents) sites[p].children.push_back(i);
    }
    if (s.backup_parents.empty()) sites[i].on_backup = false;
  }
  config_ = std::move(config);
  devices_ = std::move(devices);
  device_index_ = std::move(device_index);
  sites_ = std::move(sites);
  site_index_ = std::move(index);
  rerender_ = true;
  evaluate();
}

std::uint32_t SiteStates::slot(const std::string& key) const {
  auto it = device_index_.find(key);
  return it == device_index_.end() ? kNoSlot : it->second;
}

void SiteStates::on_round(std::uint32_t slot, const probes::RoundResult& r) {
  if (slot >= devices_.size()) return;
  DeviceTrack& t = devices_[slot];
  const auto& st = config_->site_state;
  if (r.stalled) return;  // siteprobe's own stall, not the network's: no verdict, nothing averaged
  const DeviceTrack::Contribution before = t.contribution();
  if (r.received > 0) {
    t.goods++;
    t.fails = 0;
    if (t.verdict == -1 || t.goods >= st.up_after) t.verdict = 1;
  } else {
    t.fails++;
    t.goods = 0;
    if (t.fails >= st.down_after) t.verdict = 0;
  }
  auto u16 = [](int n) { return static_cast<std::uint16_t>(std::clamp(n, 0, 0xFFFF)); };
  t.window.push(
      {u16(r.attempted), u16(r.received), static_cast<float>(r.rtt_mean), static_cast<float>(r.jitter)},
      static_cast<std::size_t>(st.window));
  const auto a = t.average();
  t.degraded_now = t.degraded(st);
  changed(t, before);
  if (a.answered) {
    const EModel e = emodel(a.rtt, a.jitter, a.loss);
    t.q->r.set(e.r);
    t.q->mos.set(e.mos);
  } else {
    t.q->r.set(0);
    t.q->mos.set(1);
  }
}

void SiteStates::evaluate() {
  visits_ = 0;
  // Parents before children (level order, then inventory order, as one full pass would go), so a
  // child re-decided because its parent changed sees the parent's new state.
  std::set<std::pair<std::size_t, std::uint32_t>> work;
  for (std::uint32_t i : dirty_) {
    sites_[i].dirty = false;
    work.emplace(config_->sites[i].level_index, i);
  }
  dirty_.clear();
  bool changed = false;
  while (!work.empty()) {
    const std::uint32_t i = work.begin()->second;
    work.erase(work.begin());
    visits_++;
    const Site& s = config_->sites[i];
    SiteTrack& t = sites_[i];
    // Own status from the considered devices (the reachability ones, or all if none is marked).
    SiteState next = SiteState::Unknown;
    if (t.ok > 0)
      next = t.degraded > 0 ? SiteState::Degraded : SiteState::Up;
    else if (t.considered > 0 && t.failing == t.considered)
      next = SiteState::Down;
    auto lost = [this](std::uint32_t p) {
      return sites_[p].state == SiteState::Down || sites_[p].state == SiteState::Unreachable;
    };
    if (next == SiteState::Down && !t.parents.empty() &&
        std::all_of(t.parents.begin(), t.parents.end(), lost))
      next = SiteState::Unreachable;
    const bool backup =
        t.parents.size() > 1 && (next == SiteState::Up || next == SiteState::Degraded) &&
        (lost(t.parents[0]) || (t.primary > 0 && t.primary_failing == t.primary) || t.uplinks_down > 0);
    if (backup != t.on_backup) {
      t.on_backup = backup;
      changed = true;
      if (on_backup_) on_backup_(s, backup);
    }
    if (next == t.state) continue;
    const SiteState from = t.state;
    t.state = next;
    t.changes++;
    t.changed_at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    changed = true;
    if (t.top && from == SiteState::Down) tops_down_--;
    if (t.top && next == SiteState::Down) tops_down_++;
    for (std::uint32_t c : t.children) work.emplace(config_->sites[c].level_index, c);
    if (on_change_) on_change_(s, from, next);
  }
  vantage_up_ = tops_ == 0 || tops_down_ < tops_;
  if (!changed && !rerender_) return;
  rerender_ = false;

  std::string out;
  append_header(out, "siteprobe_site_state");
  for (const auto& t : sites_) {
    out += "siteprobe_site_state{" + t.labels + "} ";
    append_value(out, static_cast<std::uint64_t>(t.state));
    out += '\n';
  }
  append_header(out, "siteprobe_site_state_changes_total");
  for (const auto& t : sites_) {
    out += "siteprobe_site_state_changes_total{" + t.labels + "} ";
    append_value(out, t.changes);
    out += '\n';
  }
  append_header(out, "siteprobe_site_state_change_timestamp_seconds");
  for (const auto& t : sites_) {
    if (t.changes == 0) continue;  // no state yet: nothing to date
    out += "siteprobe_site_state_change_timestamp_seconds{" + t.labels + "} ";
    append_value(out, t.changed_at);
    out += '\n';
  }
  bool any_backup = false;
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    if (sites_[i].parents.size() < 2) continue;
    if (!any_backup) append_header(out, "siteprobe_site_on_backup_path");
    any_backup = true;
    out += "siteprobe_site_on_backup_path{" + sites_[i].labels + "} ";
    out += sites_[i].on_backup ? "1\n" : "0\n";
  }
  append_header(out, "siteprobe_vantage_up");
  out += std::string("siteprobe_vantage_up ") + (vantage_up_ ? "1\n" : "0\n");
  text_.set(std::move(out));
}

SiteState SiteStates::state(const std::string& site_id) const {
  auto it = site_index_.find(site_id);
  return it == site_index_.end() ? SiteState::Unknown : sites_[it->second].state;
}

bool SiteStates::on_backup_path(const std::string& site_id) const {
  auto it = site_index_.find(site_id);
  return it != site_index_.end() && sites_[it->second].on_backup;
}

void SiteStates::on_snmp(const std::string& key, const probes::SnmpResult& r) {
  const std::uint32_t i = slot(key);
  if (i == kNoSlot || !r.ok || sites_[devices_[i].site].parents.size() < 2) return;
  DeviceTrack& t = devices_[i];
  const DeviceTrack::Contribution before = t.contribution();
  t.uplinks_down =
      !r.uplinks.empty() && std::none_of(r.uplinks.begin(), r.uplinks.end(),
                                         [](const probes::SnmpResult::Link& l) { return l.oper == 1; });
  changed(t, before);
}

SiteStates::DeviceView SiteStates::device(const std::string& key) const {
  const std::uint32_t i = slot(key);
  if (i == kNoSlot) return {};
  return {devices_[i].verdict, devices_[i].q->mos.get()};
}

Exposition::Parts SiteStates::QualityExposition::parts() const {
  using S = std::shared_ptr<const Quality>;
  return family_parts<S>(set.snapshot(),
                         {{header("siteprobe_device_r_factor"),
                           [](std::string& out, const S& q) {
                             append_line(out, "siteprobe_device_r_factor", q->labels, q->r.get());
                           }},
                          {header("siteprobe_device_mos"), [](std::string& out, const S& q) {
                             append_line(out, "siteprobe_device_mos", q->labels, q->mos.get());
                           }}});
}

}  // namespace siteprobe
