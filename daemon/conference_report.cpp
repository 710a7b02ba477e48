#include "daemon/conference_report.h"

#include <cmath>
#include <cstdio>

#include "daemon/conference.h"
#include "util/emodel.h"
#include "util/text.h"

namespace siteprobe {
namespace {

using text::csv_cell;
using text::md_cell;

bool down(SiteState s) {
  return s == SiteState::Down || s == SiteState::Unreachable;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

const Conference* find(const Config* c, const std::string& name) {
  if (c)
    for (const auto& x : c->conferences)
      if (x.name == name) return &x;
  return nullptr;
}

}  // namespace

void ConferenceReports::configure(std::shared_ptr<const Config> config, const SiteStates& states) {
  config_ = std::move(config);
  slot_of_.clear();
  for (const auto& s : config_->sites)
    for (const auto& d : s.devices) {
      const std::string key = Config::device_key(s, d);
      slot_of_[key] = states.slot(key);
    }
  for (auto it = path_.begin(); it != path_.end();)
    it = slot_of_.count(it->first) ? std::next(it) : path_.erase(it);
  for (auto it = open_.begin(); it != open_.end();) {
    const Conference* c = find(config_.get(), it->first);
    if (!c) {
      it = open_.erase(it);
      continue;
    }
    participants(*c, it->second, nullptr, 0);
    ++it;
  }
  std::lock_guard<std::mutex> g(mu_);
  for (auto* m : {&live_, &last_})
    for (auto it = m->begin(); it != m->end();)
      it = find(config_.get(), it->first) ? std::next(it) : m->erase(it);
  rebuild_slots();
}

// The window's rows: every device of every participant site; rows of devices that stay keep their sums.
void ConferenceReports::participants(const Conference& c, Window& w, const SiteStates* states,
                                     std::int64_t now) {
  std::map<std::string, const Site*> sites;
  for (const auto& s : config_->sites) sites[s.id] = &s;
  const std::size_t district_level = config_->levels.size() > 1 ? 1 : 0;
  std::map<std::string, Dev> devs;
  std::map<std::string, SiteAcc> accs;
  w.order.clear();
  for (const auto& id : c.participants) {
    const auto s = sites.find(id);
    if (s == sites.end()) continue;
    const Site& site = *s->second;
    if (auto a = w.sites.find(id); a != w.sites.end())
      accs[id] = a->second;
    else
      accs[id] = {states ? states->state(id) : SiteState::Unknown, now, 0, 0};
    for (const auto& d : site.devices) {
      const std::string key = Config::device_key(site, d);
      Dev row;
      if (auto old = w.devs.find(key); old != w.devs.end()) row = old->second;
      row.district = district_level < site.chain.size() ? site.chain[district_level] : "";
      row.site = site.id;
      row.site_name = site.name;
      row.device = d.name;
      row.role = d.role;
      devs[key] = row;
      w.order.push_back(key);
    }
  }
  w.devs = std::move(devs);
  w.sites = std::move(accs);
}

void ConferenceReports::rebuild_slots() {
  std::size_t max_slot = 0;
  for (const auto& [k, s] : slot_of_)
    if (s != SiteStates::kNoSlot) max_slot = std::max<std::size_t>(max_slot, s);
  by_slot_.assign(max_slot + 1, {});
  for (auto& [name, w] : open_)
    for (auto& [key, d] : w.devs)
      if (auto s = slot_of_.find(key); s != slot_of_.end() && s->second != SiteStates::kNoSlot)
        by_slot_[s->second].push_back(&d);
}

void ConferenceReports::on_round(std::uint32_t slot, const probes::RoundResult& r) {
  if (slot >= by_slot_.size() || r.stalled) return;  // our own stall is neither loss nor delay
  for (Dev* d : by_slot_[slot]) {
    d->attempted += static_cast<std::uint64_t>(r.attempted);
    d->received += static_cast<std::uint64_t>(r.received);
    d->rtt_sum += r.rtt_mean * r.received;
    d->jitter_sum += r.jitter * r.received;
  }
}

void ConferenceReports::on_site_change(const std::string& site_id, SiteState to, std::int64_t now) {
  for (auto& [name, w] : open_) {
    auto a = w.sites.find(site_id);
    if (a == w.sites.end()) continue;
    SiteAcc& s = a->second;
    if (down(s.state)) s.down_s += now - s.since;
    if (s.state != SiteState::Unknown) ++s.changes;  // a first verdict is no change
    s.state = to;
    s.since = now;
  }
}

void ConferenceReports::on_path_test(const std::string& key, const probes::PathTestSummary& p) {
  path_[key] = p;
}

void ConferenceReports::tick(std::int64_t now, const SiteStates& states) {
  if (!config_) return;
  bool changed = false;
  for (const auto& c : config_->conferences) {
    const auto occ = Conferences::next(c, now);
    const bool under_way = occ && occ->start <= now;
    auto it = open_.find(c.name);
    if (it != open_.end() && (!under_way || it->second.start != occ->start)) {  // it ended
      render(c, it->second, std::min(now, it->second.end), true);
      open_.erase(it);
      it = open_.end();
      changed = true;
    }
    if (under_way && it == open_.end()) {
      Window& w = open_[c.name];
      w.start = occ->start;
      w.end = occ->end;
      participants(c, w, &states, now);
      changed = true;
    }
    if (under_way && now - open_[c.name].last >= 5) render(c, open_[c.name], now, false);
  }
  if (changed) rebuild_slots();
}

void ConferenceReports::render(const Conference& c, Window& w, std::int64_t now, bool done) {
  w.last = now;
  const std::string start = Conferences::local_time(w.start, c.utc_offset_seconds),
                    end = Conferences::local_time(w.end, c.utc_offset_seconds);
  std::string csv =
      "conference,start,end,district,site,site_name,device,role,requests_sent,loss_percent,rtt_ms,ipdv_ms,"
      "mos,"
      "site_down_seconds,site_state_changes,path_test\r\n";
  std::string rows;
  int bad = 0;
  double worst = NAN;
  std::map<std::string, int> sites_bad;
  for (const auto& key : w.order) {
    const Dev& d = w.devs.at(key);
    const SiteAcc& s = w.sites.at(d.site);
    const std::int64_t down_s = s.down_s + (down(s.state) ? now - s.since : 0);
    const double loss =
        d.attempted ? 1.0 - static_cast<double>(d.received) / static_cast<double>(d.attempted) : NAN;
    const double rtt = d.received ? d.rtt_sum / static_cast<double>(d.received) : NAN;
    const double ipdv = d.received ? d.jitter_sum / static_cast<double>(d.received) : NAN;
    const double mos =
        d.attempted ? emodel(std::isfinite(rtt) ? rtt : 0, std::isfinite(ipdv) ? ipdv : 0, loss).mos : NAN;
    std::string path;
    if (auto p = path_.find(key); p != path_.end())
      path = std::string(probes::verdict_name(p->second.verdict)) +
             (p->second.reason.empty() ? "" : ": " + p->second.reason);
    if (std::isfinite(mos) && !(mos >= worst)) worst = mos;
    const bool poor = (std::isfinite(loss) && loss > 0.01) || (std::isfinite(mos) && mos < 3.6) || down_s > 0;
    bad += poor;
    const std::vector<std::string> cells = {c.name,
                                            start,
                                            end,
                                            d.district,
                                            d.site,
                                            d.site_name,
                                            d.device,
                                            d.role,
                                            std::to_string(d.attempted),
                                            fixed(loss * 100, 2),
                                            fixed(rtt * 1000, 2),
                                            fixed(ipdv * 1000, 2),
                                            fixed(mos, 2),
                                            std::to_string(down_s),
                                            std::to_string(s.changes),
                                            path};
    for (std::size_t i = 0; i < cells.size(); ++i) csv += (i ? "," : "") + csv_cell(cells[i]);
    csv += "\r\n";
    rows += "| " + md_cell(d.district) + " | " + md_cell(d.site_name) + " (" + md_cell(d.site) + ") | " +
            md_cell(d.device) + " | " + (cells[9].empty() ? "-" : cells[9] + " %") + " | " +
            (cells[10].empty() ? "-" : cells[10] + " ms") + " | " +
            (cells[11].empty() ? "-" : cells[11] + " ms") + " | " + (cells[12].empty() ? "-" : cells[12]) +
            " | " + std::to_string(down_s) + " s | " + std::to_string(s.changes) + " | " +
            md_cell(path.empty() ? "-" : path) + " |" + (poor ? " **poor**" : "") + "\n";
  }
  std::string md =
      "# Conference " + md_cell(c.name) + ": quality report\n\n" + start + " to " + end +
      (done ? "" : " (under way: figures up to " + Conferences::local_time(now, c.utc_offset_seconds) + ")") +
      ". Participants: " + md_cell(c.participants_text) + " (" + std::to_string(w.sites.size()) + " sites, " +
      std::to_string(w.order.size()) + " devices). From siteprobe's own ICMP rounds during the window; " +
      "the path test is each device's last. Poor (loss above 1 %, MOS below 3.6, or its site down): " +
      std::to_string(bad) + " of " + std::to_string(w.order.size()) + " devices; worst MOS " +
      (std::isfinite(worst) ? fixed(worst, 2) : std::string("-")) + ".\n\n" +
      "| District | Site | Device | Loss | RTT | IPDV | MOS | Site down | State changes | Path test |\n" +
      "|---|---|---|---|---|---|---|---|---|---|\n" + rows;
  std::lock_guard<std::mutex> g(mu_);
  Text& t = (done ? last_ : live_)[c.name];
  t.csv = std::move(csv);
  t.md = std::move(md);
  if (done) live_.erase(c.name);
}

std::string ConferenceReports::report(const std::string& name, const std::string& format, int& status) const {
  if (format != "csv" && format != "markdown") {
    status = 400;
    return "format must be csv or markdown, not \"" + format + "\"\n";
  }
  std::lock_guard<std::mutex> g(mu_);
  const Text* t = nullptr;
  if (auto it = live_.find(name); it != live_.end())
    t = &it->second;
  else if (auto jt = last_.find(name); jt != last_.end())
    t = &jt->second;
  if (!t) {
    status = 404;
    return "No report for conference \"" + name +
           "\": it is not in the inventory, or none of its occurrences has started since siteprobe started\n";
  }
  status = 200;
  return format == "csv" ? t->csv : t->md;
}

}  // namespace siteprobe
