#include "daemon/status.h"

#include <algorithm>
#include <cctype>

#include "daemon/status_json.h"
#include "probes/registry.h"

namespace siteprobe {

void DeviceHistory::close_bucket() {
  const auto i = static_cast<std::size_t>(minute_ % static_cast<std::int64_t>(kPoints));
  loss_[i] = attempted_ == 0 ? kNoData
                             : static_cast<std::uint16_t>(
                                   10000ull * (attempted_ - std::min(received_, attempted_)) / attempted_);
  rtt_[i] = received_ == 0 ? kNoData : tenths(rtt_sum_ / static_cast<float>(received_));
}

void DeviceHistory::add(const probes::RoundResult& r, std::int64_t minute) {
  if (r.stalled) return;  // neither loss nor down (probes/probe.h)
  if (minute_ < 0) {
    loss_.fill(kNoData);
    rtt_.fill(kNoData);
    minute_ = minute;
  } else if (minute > minute_) {
    close_bucket();
    // Minutes without any round have no data.
    for (std::int64_t m = minute_ + 1; m < minute && m <= minute_ + static_cast<std::int64_t>(kPoints); ++m) {
      const auto i = static_cast<std::size_t>(m % static_cast<std::int64_t>(kPoints));
      loss_[i] = kNoData;
      rtt_[i] = kNoData;
    }
    minute_ = minute;
    attempted_ = received_ = 0;
    rtt_sum_ = 0;
  }
  attempted_ += static_cast<std::uint32_t>(std::max(r.attempted, 0));
  received_ += static_cast<std::uint32_t>(std::max(r.received, 0));
  if (r.received > 0) rtt_sum_ += static_cast<float>(r.rtt_mean * 1000.0 * r.received);
}

void DeviceHistory::points(std::int64_t now_minute, std::array<std::uint16_t, kPoints>& loss,
                           std::array<float, kPoints>& rtt) const {
  const auto n = static_cast<std::int64_t>(kPoints);
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t m = now_minute - (n - 1) + k;
    const auto out = static_cast<std::size_t>(k);
    loss[out] = kNoData;
    rtt[out] = NAN;
    if (minute_ < 0 || m > minute_ || m <= minute_ - n) continue;
    if (m == minute_) {
      if (attempted_ > 0)
        loss[out] = static_cast<std::uint16_t>(10000ull * (attempted_ - std::min(received_, attempted_)) /
                                               attempted_);
      if (received_ > 0) rtt[out] = rtt_sum_ / static_cast<float>(received_);
    } else {
      const auto i = static_cast<std::size_t>(m % n);
      loss[out] = loss_[i];
      rtt[out] = rtt_[i] == kNoData ? NAN : static_cast<float>(rtt_[i]) / 10;
    }
  }
}

void StatusBoard::configure(std::shared_ptr<const Config> config, const SiteStates& states) {
  published_ = false;
  std::vector<Dev> devs;
  devs.reserve(config->device_count());
  std::unordered_map<std::string, std::uint32_t> by_key;
  std::vector<std::vector<std::uint32_t>> site_devs(config->sites.size());
  std::map<std::string, std::size_t> site_index;
  for (std::size_t si = 0; si < config->sites.size(); ++si) {
    const Site& s = config->sites[si];
    site_index[s.id] = si;
    for (const auto& d : s.devices) {
      const std::string key = Config::device_key(s, d);
      const std::uint32_t slot = states.slot(key);
      if (slot == SiteStates::kNoSlot) continue;
      if (devs.size() <= slot) devs.resize(slot + 1);
      Dev& v = devs[slot];
      if (auto old = by_key_.find(key); old != by_key_.end() && old->second < devs_.size())
        v = std::move(devs_[old->second]);  // a reload keeps the history
      v.site = si;
      v.device = &d;
      v.key = key;
      v.endpoint = !probes::call_services(d).empty();
      by_key[key] = slot;
      site_devs[si].push_back(slot);
    }
  }
  config_ = std::move(config);
  devs_ = std::move(devs);
  by_key_ = std::move(by_key);
  site_devs_ = std::move(site_devs);
  site_index_ = std::move(site_index);
  dirty_.assign(config_->sites.size(), true);
  rows_.assign(config_->sites.size(), nullptr);
  ++gen_;
  std::string t = "{\"gen\":" + std::to_string(gen_) + ",\"levels\":[";
  for (std::size_t i = 0; i < config_->levels.size(); ++i) {
    if (i) t += ',';
    json::str(t, config_->levels[i]);
  }
  t += "],\"sites\":[";
  for (std::size_t i = 0; i < config_->sites.size(); ++i) {
    const Site& s = config_->sites[i];
    t += i ? ",{\"id\":" : "{\"id\":";
    json::str(t, s.id);
    json::members(t, {{"name", s.name}, {"level", s.level}, {"parent", s.parent}});
    t += ",\"lat\":";
    json::num(t, s.map_lat.value_or(NAN), 5);  // where to draw it: coincident sites spread
    t += ",\"lon\":";
    json::num(t, s.map_lon.value_or(NAN), 5);
    t += ",\"devices\":" + std::to_string(site_devs_[i].size()) + "}";
  }
  tree_ = t + "]}";
}

void StatusBoard::on_round(std::uint32_t slot, const probes::RoundResult& r, double now) {
  if (slot >= devs_.size() || !devs_[slot].device) return;
  Dev& d = devs_[slot];
  d.hist.add(r, static_cast<std::int64_t>(now / 60));
  if (!r.stalled && r.attempted > 0) {
    d.loss = 1.0 - static_cast<double>(r.received) / r.attempted;
    d.rtt_ms = r.received > 0 ? r.rtt_mean * 1000 : NAN;
    d.jitter_ms = r.received > 0 ? r.jitter * 1000 : NAN;
  }
  dirty_[d.site] = true;
}

void StatusBoard::on_check(const std::string& key, const probes::CheckResult& c, double now) {
  if (!c.call_service) return;
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  Dev& d = devs_[it->second];
  dirty_[d.site] = true;
  auto [s, fresh] = d.service_up.try_emplace(c.service, c.up);
  if (!fresh && s->second == c.up) return;
  s->second = c.up;
  if (fresh && c.up) return;  // the first answer is news only when it is a failure
  std::string svc = c.service;
  for (auto& ch : svc) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (svc == "H323") svc = "H.323";
  add_change({now, config_->sites[d.site].id, d.device->name, fresh ? "unknown" : (c.up ? "down" : "up"),
              c.up ? "up" : "down", c.up ? "why.service_up" : "why.service_down", svc + " " + c.detail});
}

void StatusBoard::on_snmp(const std::string& key, const probes::SnmpResult& r, double now) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  Dev& d = devs_[it->second];
  dirty_[d.site] = true;
  if (r.ok && d.snmp)  // an uplink that changed between two answers is news
    for (const auto& l : r.uplinks)
      for (const auto& was : d.snmp->uplinks)
        if (was.name == l.name && (was.oper == 1) != (l.oper == 1))
          add_change({now, config_->sites[d.site].id, d.device->name, was.oper == 1 ? "up" : "down",
                      l.oper == 1 ? "up" : "down", l.oper == 1 ? "why.uplink_up" : "why.uplink_down",
                      l.name});
  if (!r.ok && d.snmp) {  // keep the last answer's uplinks, flagged by the error
    d.snmp->ok = false;
    d.snmp->error = r.error;
    return;
  }
  d.snmp = std::make_unique<probes::SnmpResult>(r);
}

void StatusBoard::on_site_change(const Site& site, SiteState from, SiteState to, double now) {
  Change c{now, site.id, "", to_string(from), to_string(to), "", ""};
  auto si = site_index_.find(site.id);
  if (si != site_index_.end() && si->second < dirty_.size()) dirty_[si->second] = true;  // readiness
  char buf[48];
  switch (to) {
    case SiteState::Unreachable:
      c.why = "why.parent_down";
      break;
    case SiteState::Down:
      c.why = "why.no_reply";
      break;
    case SiteState::Up:
      c.why = from == SiteState::Unknown ? "why.started" : "why.recovered";
      break;
    case SiteState::Degraded:
      // The worst reachability device's last round: its loss, else its RTT.
      if (si != site_index_.end() && config_) {
        double loss = 0, rtt = 0;
        for (auto slot : site_devs_[si->second]) {
          const Dev& d = devs_[slot];
          if (!d.device->reachability) continue;
          if (!std::isnan(d.loss)) loss = std::max(loss, d.loss);
          if (!std::isnan(d.rtt_ms)) rtt = std::max(rtt, d.rtt_ms);
        }
        if (loss >= config_->site_state.degraded_loss && loss > 0) {
          c.why = "why.loss";
          std::snprintf(buf, sizeof buf, "%.0f %%", loss * 100);
        } else {
          c.why = "why.rtt";
          std::snprintf(buf, sizeof buf, "%.0f ms", rtt);
        }
        c.arg = buf;
      }
      break;
    case SiteState::Unknown:
      break;
  }
  add_change(std::move(c));
}

void StatusBoard::add_change(Change c) {
  changes_.push_front(std::move(c));
  if (changes_.size() > kMaxChanges) changes_.pop_back();
}

void StatusBoard::publish(const SiteStates& states, const Readiness& readiness, double now) {
  if (!config_) return;
  const bool watched = steady_ns() - read_ns_.load(std::memory_order_relaxed) <= watched_ns_;
  const bool keep_rows = watched || devs_.size() <= rows_always_;
  if (published_ && !watched) {
    // Unwatched: a large inventory's device rows are dropped (about 0.6 KB a device, 60 MB at
    // 100k); the next publish after a read rebuilds them all.
    if (!keep_rows && std::any_of(rows_.begin(), rows_.end(), [](const auto& r) { return r != nullptr; })) {
      rows_.assign(rows_.size(), nullptr);
      auto s = std::make_shared<Snapshot>(*snapshot_unmarked());
      s->devices = rows_;
      std::lock_guard<std::mutex> l(mu_);
      snap_ = std::move(s);
    }
    return;
  }
  published_ = true;
  const auto now_minute = static_cast<std::int64_t>(now / 60);
  for (std::size_t si = 0; keep_rows && si < config_->sites.size(); ++si) {
    if (!dirty_[si] && rows_[si]) continue;
    dirty_[si] = false;
    auto rows = std::make_shared<std::vector<DeviceRow>>();
    rows->reserve(site_devs_[si].size());
    for (auto slot : site_devs_[si]) {
      const Dev& d = devs_[slot];
      DeviceRow r;
      r.name = d.device->name;
      r.role = d.device->role;
      r.verdict = states.device(d.key).verdict;
      r.loss = d.loss;
      r.rtt_ms = d.rtt_ms;
      r.jitter_ms = d.jitter_ms;
      if (d.endpoint) r.readiness = Readiness::name(readiness.reason(d.key));
      if (d.snmp) {
        r.snmp = true;
        r.snmp_error = d.snmp->ok ? "" : d.snmp->error;
        r.uplinks = d.snmp->uplinks;
      }
      d.hist.points(now_minute, r.loss_hist, r.rtt_hist);
      rows->push_back(std::move(r));
    }
    rows_[si] = std::move(rows);
  }
  std::string o = "{\"gen\":" + std::to_string(gen_) + ",\"now\":";
  json::num(o, now, 3);
  o += ",\"states\":[";
  std::size_t counts[5] = {0, 0, 0, 0, 0};
  for (std::size_t i = 0; i < config_->sites.size(); ++i) {
    const auto st = static_cast<std::size_t>(states.state(config_->sites[i].id));
    ++counts[st < 5 ? st : 0];
    if (i) o += ',';
    o += std::to_string(st);
  }
  o += "],\"counts\":{";
  for (std::size_t k = 0; k < 5; ++k) {
    if (k) o += ',';
    json::str(o, to_string(static_cast<SiteState>(k)));
    o += ':' + std::to_string(counts[k]);
  }
  o += "},\"changes\":[";
  bool first = true;
  for (const auto& c : changes_) {
    o += first ? "{\"t\":" : ",{\"t\":";
    first = false;
    json::num(o, c.at, 0);
    json::members(o, {{"site", c.site},
                      {"device", c.device},
                      {"from", c.from},
                      {"to", c.to},
                      {"why", c.why},
                      {"arg", c.arg}});
    o += '}';
  }
  std::size_t total = 0;
  const auto rrows = readiness.rows(total);
  o += "],\"readiness\":{\"total\":" + std::to_string(total) + ",\"rows\":[";
  first = true;
  for (const auto& r : rrows) {
    o += first ? "{\"reason\":" : ",{\"reason\":";
    first = false;
    json::str(o, Readiness::name(r.reason));
    json::members(o, {{"group", r.group},
                      {"group_name", r.group_name},
                      {"site", r.site},
                      {"site_name", r.site_name},
                      {"device", r.device},
                      {"detail", r.detail}});
    o += '}';
  }
  o += "]}}";
  auto s = std::make_shared<Snapshot>();
  s->gen = gen_;
  s->tree = tree_;
  s->live = std::move(o);
  s->site_index = site_index_;
  s->devices = rows_;
  std::lock_guard<std::mutex> l(mu_);
  snap_ = std::move(s);
}

std::string StatusBoard::site_json(const Snapshot& s, const std::string& site_id) {
  auto it = s.site_index.find(site_id);
  if (it == s.site_index.end() || it->second >= s.devices.size()) return "";
  std::string o = "{\"site\":";
  json::str(o, site_id);
  // A large inventory's rows exist only while the page is watched: the first read after a quiet
  // spell gets them from the next publish, within a second.
  if (!s.devices[it->second]) return o + ",\"pending\":true,\"devices\":[]}";
  o += ",\"devices\":[";
  bool first = true;
  for (const auto& d : *s.devices[it->second]) {
    o += first ? "{\"name\":" : ",{\"name\":";
    first = false;
    json::str(o, d.name);
    json::members(o, {{"role", d.role}, {"ready", d.readiness}});
    o += ",\"verdict\":" + std::to_string(d.verdict) + ",\"loss\":";
    json::num(o, d.loss * 100, 1);
    o += ",\"rtt\":";
    json::num(o, d.rtt_ms, 2);
    o += ",\"jitter\":";
    json::num(o, d.jitter_ms, 2);
    if (d.snmp) {
      o += ",\"snmp\":{\"error\":";
      json::str(o, d.snmp_error);
      o += ",\"uplinks\":[";
      for (std::size_t i = 0; i < d.uplinks.size(); ++i) {
        o += i ? ",{\"name\":" : "{\"name\":";
        json::str(o, d.uplinks[i].name);
        o += ",\"oper\":" + std::to_string(d.uplinks[i].oper) +
             ",\"admin\":" + std::to_string(d.uplinks[i].admin) + ",\"speed\":";
        json::num(o, d.uplinks[i].speed_bps, 0);
        o += '}';
      }
      o += "]}";
    }
    o += ",\"loss_hist\":[";
    for (std::size_t i = 0; i < d.loss_hist.size(); ++i) {
      if (i) o += ',';
      if (d.loss_hist[i] == DeviceHistory::kNoData)
        o += "null";
      else
        json::num(o, d.loss_hist[i] / 100.0, 1);
    }
    o += "],\"rtt_hist\":[";
    for (std::size_t i = 0; i < d.rtt_hist.size(); ++i) {
      if (i) o += ',';
      json::num(o, static_cast<double>(d.rtt_hist[i]), 1);
    }
    o += "]}";
  }
  return o + "]}";
}

}  // namespace siteprobe
