#include "daemon/readiness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "metrics/families.h"

namespace siteprobe {
namespace {

// Display width of UTF-8 text: one column per code point (Vietnamese names have no wide glyphs).
std::size_t width(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}
std::string pad(const std::string& s, std::size_t w) {
  return s + std::string(w > width(s) ? w - width(s) : 0, ' ');
}

}  // namespace

const char* Readiness::name(Reason r) {
  switch (r) {
    case Ready:
      return "ready";
    case SiteDown:
      return "site_down";
    case DeviceDown:
      return "device_down";
    case CallServiceDown:
      return "call_service_down";
    case LowMos:
      return "low_mos";
    case OnBackupPath:
      return "on_backup_path";
    case Unknown:
      break;
  }
  return "unknown";
}

void Readiness::configure(std::shared_ptr<const Config> config) {
  std::map<std::string, Endpoint> eps;
  for (std::size_t i = 0; i < config->sites.size(); ++i) {
    const Site& s = config->sites[i];
    for (const auto& d : s.devices) {
      Endpoint e;
      e.services = probes::call_services(d);
      if (e.services.empty()) continue;  // not an endpoint
      const std::string key = Config::device_key(s, d);
      // Results of a service that is now disabled no longer count.
      if (auto old = endpoints_.find(key); old != endpoints_.end())
        for (const auto& c : e.services)
          if (auto r = old->second.last.find(c.name); r != old->second.last.end()) e.last.insert(*r);
      e.site = i;
      e.device = &d;
      e.labels = render_labels(config->device_labels(s, d));
      eps[key] = std::move(e);
    }
  }
  config_ = std::move(config);
  endpoints_ = std::move(eps);
}

void Readiness::on_check(const std::string& key, const probes::CheckResult& r) {
  auto it = endpoints_.find(key);
  if (it != endpoints_.end() && r.call_service) it->second.last[r.service] = r;
}

Readiness::Reason Readiness::reason(const std::string& key) const {
  auto it = endpoints_.find(key);
  return it == endpoints_.end() ? Unknown : it->second.reason;
}

void Readiness::evaluate(const SiteStates& states) {
  if (!config_) return;
  const double min_mos = config_->readiness_min_mos;
  std::size_t not_ready = 0;
  for (auto& [key, e] : endpoints_) {
    const Site& site = config_->sites[e.site];
    const SiteState ss = states.state(site.id);
    const auto dv = states.device(key);
    bool any_up = false, all_down = true;
    std::string services;  // "SIP 503, H.323 refused"
    for (const auto& svc : e.services) {
      auto r = e.last.find(svc.name);
      if (r == e.last.end()) {
        all_down = false;
        continue;
      }
      any_up = any_up || r->second.up;
      all_down = all_down && !r->second.up;
      if (!r->second.up)
        services += std::string(services.empty() ? "" : ", ") + svc.display + " " + r->second.detail;
    }
    char mos[64] = "";
    if (!std::isnan(dv.mos)) std::snprintf(mos, sizeof mos, "MOS %.2f < %g", dv.mos, min_mos);
    if (ss == SiteState::Down || ss == SiteState::Unreachable) {
      e.reason = SiteDown;
      e.detail = ss == SiteState::Down ? "site down" : "site unreachable (parent down)";
      if (const std::string n = ss == SiteState::Down && site_note_ ? site_note_(site.id) : ""; !n.empty())
        e.detail += " (" + n + ")";
    } else if (states.on_backup_path(site.id)) {
      e.reason = OnBackupPath;
      e.detail = "site on backup path (primary uplink down)";
    } else if (dv.verdict == 0) {
      e.reason = DeviceDown;
      e.detail = "no ping reply";
    } else if (all_down) {
      e.reason = CallServiceDown;
      e.detail = services;
      services.clear();
    } else if (dv.verdict == 1 && !std::isnan(dv.mos) && dv.mos < min_mos) {
      e.reason = LowMos;
      e.detail = mos;
    } else if (dv.verdict == 1 && any_up && !std::isnan(dv.mos)) {
      e.reason = Ready;
      e.detail.clear();
    } else {
      e.reason = Unknown;
      e.detail = "not measured yet";
    }
    if (e.reason != Ready && e.reason != CallServiceDown && !services.empty()) e.detail += "; " + services;
    not_ready += e.reason != Ready;
  }

  std::string out;
  append_header(out, "siteprobe_endpoint_ready");
  for (const auto& [key, e] : endpoints_)
    out += "siteprobe_endpoint_ready{" + e.labels + (e.reason == Ready ? "} 1\n" : "} 0\n");
  // Only the current reason: a 0 series for each other reason was 5 series per endpoint for one bit.
  append_header(out, "siteprobe_endpoint_not_ready_reason");
  for (const auto& [key, e] : endpoints_)
    if (e.reason != Ready)
      out += "siteprobe_endpoint_not_ready_reason{" + e.labels + ",reason=\"" + name(e.reason) + "\"} 1\n";
  text_.set(std::move(out));

  // The report: not-ready endpoints grouped by their ancestor at the second level (the district),
  // or by their top-level site when they sit above it; rendered per language by report().
  std::vector<Row> rows;
  std::map<std::string, std::string> site_names;
  for (const auto& s : config_->sites) site_names[s.id] = s.name;
  for (const auto& [key, e] : endpoints_) {
    if (e.reason == Ready) continue;
    const Site& s = config_->sites[e.site];
    const std::string g = s.chain.size() > 1 && !s.chain[1].empty() ? s.chain[1] : s.chain[0];
    rows.push_back({g, site_names[g], s.id, s.name, e.device->name, e.reason, e.detail});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.group < b.group; });
  std::lock_guard<std::mutex> l(mu_);
  rows_ = std::move(rows);
  total_ = endpoints_.size();
  min_mos_ = min_mos;
  at_ = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  evaluated_ = true;
}
std::vector<Readiness::Row> Readiness::rows(std::size_t& total) const {
  std::lock_guard<std::mutex> l(mu_);
  total = total_;
  return rows_;
}

std::string Readiness::report(bool& all_ready, i18n::Lang lang) const {
  std::lock_guard<std::mutex> l(mu_);
  all_ready = evaluated_ && rows_.empty();
  if (!evaluated_) return std::string(i18n::tr(lang, "rd.starting")) + "\n";
  auto fill = [](std::string f, const std::vector<std::string>& args) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string k = "%" + std::to_string(i + 1);
      if (auto p = f.find(k); p != std::string::npos) f.replace(p, k.size(), args[i]);
    }
    return f;
  };
  char mos[32];
  std::snprintf(mos, sizeof mos, "%g", min_mos_);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&at_));
  std::string rep = std::string(i18n::tr(lang, "rd.at")) + " " + ts + ": " +
                    (rows_.empty() ? fill(i18n::tr(lang, "rd.header_all"), {std::to_string(total_), mos})
                                   : fill(i18n::tr(lang, "rd.header_some"),
                                          {std::to_string(rows_.size()), std::to_string(total_), mos})) +
                    "\n";
  auto reason = [&](Reason r) { return std::string(i18n::tr(lang, std::string("reason.") + name(r))); };
  const std::string h_site = i18n::tr(lang, "col.site"), h_dev = i18n::tr(lang, "col.device"),
                    h_reason = i18n::tr(lang, "col.reason"), h_detail = i18n::tr(lang, "col.detail");
  auto upper = [](std::string s) {  // ASCII only: the Vietnamese headings keep their case
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  const bool en = lang == i18n::Lang::En;
  std::size_t ws = width(h_site), wd = width(h_dev), wr = width(h_reason);
  for (const auto& r : rows_)
    ws = std::max(ws, width(r.site_name + " (" + r.site + ")")), wd = std::max(wd, width(r.device)),
    wr = std::max(wr, width(reason(r.reason)));
  std::string group;
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    const Row& r = rows_[i];
    if (i == 0 || r.group != group) {
      group = r.group;
      std::size_t n = 0;
      for (const auto& x : rows_) n += x.group == group;
      rep += "\n" + r.group_name + " (" + group + "): " + std::to_string(n) + " " +
             i18n::tr(lang, "rd.not_ready") + "\n";
      rep += "  " + pad(en ? upper(h_site) : h_site, ws) + "  " + pad(en ? upper(h_dev) : h_dev, wd) + "  " +
             pad(en ? upper(h_reason) : h_reason, wr) + "  " + (en ? upper(h_detail) : h_detail) + "\n";
    }
    rep += "  " + pad(r.site_name + " (" + r.site + ")", ws) + "  " + pad(r.device, wd) + "  " +
           pad(reason(r.reason), wr) + "  " + r.detail + "\n";
  }
  return rep;
}

}  // namespace siteprobe
