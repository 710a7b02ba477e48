#include "daemon/path_trace.h"

#include <algorithm>
#include <ctime>

#include "daemon/log.h"
#include "probes/scheduler.h"

namespace siteprobe {
namespace {

const Site* find_site(const Config& c, const std::string& id) {
  for (const auto& s : c.sites)
    if (s.id == id) return &s;
  return nullptr;
}

// The device a site's trace goes to: its first reachability device (the router), else its first.
const Device* traced_device(const Site& s) {
  for (const auto& d : s.devices)
    if (d.reachability) return &d;
  return s.devices.empty() ? nullptr : &s.devices.front();
}

// Whether the hops before the router match the expected path; a hop that did not answer ("")
// matches anything. -1: cannot tell (the router did not answer).
int path_changed(const Site& s, const probes::TraceResult& r) {
  if (s.expected_path.empty() || r.end != "reached") return -1;
  std::vector<std::string> hops(r.hops.begin(), r.hops.end() - 1);  // without the router
  const auto& want = s.expected_path;
  // The expected path may end with the router's own address.
  if (want.size() == r.hops.size() && (want.back() == r.hops.back())) hops = r.hops;
  if (hops.size() != want.size()) return 1;
  for (std::size_t i = 0; i < hops.size(); ++i)
    if (!hops[i].empty() && hops[i] != want[i]) return 1;
  return 0;
}

}  // namespace

void PathTraces::configure(std::shared_ptr<const Config> config, std::int64_t now) {
  config_ = std::move(config);
  std::map<std::string, Last> kept;
  std::map<std::string, std::int64_t> periodic;
  for (const auto& s : config_->sites) {
    if (auto it = last_.find(s.id); it != last_.end()) kept.insert(*it);
    if (s.expected_path.empty()) continue;
    const std::int64_t interval =
        std::chrono::duration_cast<std::chrono::seconds>(config_->trace.interval).count();
    auto it = periodic_.find(s.id);
    // First trace at a splayed offset, so sites with an expected path do not all go at once.
    periodic[s.id] = it != periodic_.end()
                         ? std::min(it->second, now + interval)
                         : now + 1 + probes::splay_offset_ns(s.id, interval * 1000000000) / 1000000000;
  }
  last_ = std::move(kept);
  periodic_ = std::move(periodic);
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(),
                                [this](const std::string& id) { return !find_site(*config_, id); }),
                 waiting_.end());
  if (tokens_at_ == 0) {
    tokens_ = config_->trace.max_per_minute;
    tokens_at_ = now;
  }
  tokens_ = std::min(tokens_, static_cast<double>(config_->trace.max_per_minute));
  render();
}

bool PathTraces::take_token(std::int64_t now) {
  const double cap = config_->trace.max_per_minute;
  tokens_ = std::min(cap, tokens_ + static_cast<double>(now - tokens_at_) * cap / 60);
  tokens_at_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void PathTraces::on_site_down(const std::string& site, std::int64_t now) {
  discard_.erase(site);  // down again while an earlier trace runs: its result counts after all
  if (!config_ || running_.count(site) || std::find(waiting_.begin(), waiting_.end(), site) != waiting_.end())
    return;
  if (waiting_.empty() && take_token(now)) {
    start(site);
    return;
  }
  waiting_.push_back(site);
  results_["rate_limited"]++;
  render();
}

void PathTraces::on_site_unreachable(const std::string& site) {
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), site), waiting_.end());
  if (running_.count(site)) discard_.insert(site);
  if (last_.erase(site)) render();
}

void PathTraces::tick(std::int64_t now) {
  if (!config_) return;
  while (!waiting_.empty() && take_token(now)) {
    const std::string site = waiting_.front();
    waiting_.pop_front();
    start(site);
  }
  const std::int64_t interval =
      std::chrono::duration_cast<std::chrono::seconds>(config_->trace.interval).count();
  for (auto& [site, due] : periodic_) {
    if (due > now || running_.count(site)) continue;
    if (!waiting_.empty() || !take_token(now)) break;  // down sites first
    due = now + interval;
    start(site);
  }
}

void PathTraces::start(const std::string& id) {
  const Site* s = find_site(*config_, id);
  const Device* d = s ? traced_device(*s) : nullptr;
  if (!d || !request_) return;
  running_.insert(id);
  request_(Config::device_key(*s, *d), config_->trace.max_hops, config_->trace.timeout,
           [this, id](const probes::TraceResult& r) { done(id, r); });
}

void PathTraces::done(const std::string& id, const probes::TraceResult& r) {
  running_.erase(id);
  const Site* s = config_ ? find_site(*config_, id) : nullptr;
  if (discard_.erase(id) || !s) return;  // unreachable now, or removed by a reload meanwhile
  results_[r.error.empty() ? r.end : "failed"]++;
  if (!r.error.empty()) {
    log(LogLevel::Warn, "path trace failed", {{"site", id}, {"device", r.key}, {"error", r.error}});
    render();
    return;
  }
  Last& l = last_[id];
  const int was = l.changed;
  l.r = r;
  l.at = static_cast<std::int64_t>(std::time(nullptr));
  if (const int c = path_changed(*s, r); c >= 0) l.changed = c;
  std::string hops;
  for (const auto& h : r.hops) hops += (hops.empty() ? "" : " ") + (h.empty() ? std::string("*") : h);
  log(r.end == "reached" ? LogLevel::Info : LogLevel::Warn, "path trace",
      {{"site", id},
       {"device", r.key},
       {"end", r.end},
       {"last_hop", std::to_string(r.last_hop)},
       {"address", r.last_address},
       {"hops", hops}});
  if (l.changed == 1 && was != 1) log(LogLevel::Warn, "path changed", {{"site", id}, {"hops", hops}});
  render();
}

std::string PathTraces::note(const std::string& site) const {
  auto it = last_.find(site);
  if (it == last_.end()) return "";
  const probes::TraceResult& r = it->second.r;
  if (r.last_hop == 0) return "no hop answered the trace";
  if (r.end == "reached") return "path reaches the router, hop " + std::to_string(r.last_hop);
  return "path ends after " + r.last_address + ", hop " + std::to_string(r.last_hop);
}

void PathTraces::render() {
  std::string info, hops, at, changed, totals;
  for (const auto& [id, l] : last_) {
    const Site* s = find_site(*config_, id);
    if (!s) continue;
    const auto sl = config_->site_labels(*s);
    const std::string labels = render_labels(sl);
    auto with = sl;
    with["hop"] = std::to_string(l.r.last_hop);
    with["address"] = l.r.last_address;
    with["end"] = l.r.end;
    append_line(info, "siteprobe_path_last_hop_info", render_labels(with), 1.0);
    append_line(hops, "siteprobe_path_hops", labels, static_cast<double>(l.r.last_hop));
    append_line(at, "siteprobe_path_trace_timestamp_seconds", labels, static_cast<double>(l.at));
    if (l.changed >= 0)
      append_line(changed, "siteprobe_path_changed", labels, static_cast<double>(l.changed));
  }
  for (const auto& [result, n] : results_)
    append_line(totals, "siteprobe_path_traces_total", render_labels({{"result", result}}),
                static_cast<double>(n));
  std::string out;
  // Nothing at all until a first trace: no series for a feature that has not run (series budget).
  if (!info.empty())
    out += header("siteprobe_path_last_hop_info") + info + header("siteprobe_path_hops") + hops +
           header("siteprobe_path_trace_timestamp_seconds") + at;
  if (!changed.empty()) out += header("siteprobe_path_changed") + changed;
  if (!totals.empty()) out += header("siteprobe_path_traces_total") + totals;
  text_->set(std::move(out));
}

}  // namespace siteprobe
