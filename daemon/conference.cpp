#include "daemon/conference.h"

#include <algorithm>
#include <cstdio>

#include "inventory/calendar.h"

namespace siteprobe {
namespace {

constexpr std::int64_t kDay = 86400;

using inventory_detail::floor_div;

}  // namespace

std::string Conferences::local_time(std::int64_t t, int offset) {
  const auto local = static_cast<time_t>(t + offset);
  std::tm tm{};
  gmtime_r(&local, &tm);
  char b[40];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M", &tm);
  char o[32];
  std::snprintf(o, sizeof o, " %c%02d:%02d", offset < 0 ? '-' : '+', std::abs(offset) / 3600,
                std::abs(offset) % 3600 / 60);
  return std::string(b) + o;
}

namespace {

const char* category(probes::PathTestSummary::Verdict v) {
  switch (v) {
    case probes::PathTestSummary::Verdict::Loss:
      return "path_loss";
    case probes::PathTestSummary::Verdict::AllLost:
      return "path_all_lost";
    case probes::PathTestSummary::Verdict::NoReflector:
      return "no_reflector";
    case probes::PathTestSummary::Verdict::QosRewritten:
      return "qos_rewritten";
    case probes::PathTestSummary::Verdict::Failed:
      return "path_test_failed";
    case probes::PathTestSummary::Verdict::Ok:
      break;
  }
  return "";
}

}  // namespace

std::optional<Conferences::Occurrence> Conferences::next(const Conference& c, std::int64_t now) {
  const auto dur = std::chrono::duration_cast<std::chrono::seconds>(c.duration).count();
  const std::int64_t today = floor_div(now + c.utc_offset_seconds, kDay);  // local day number
  std::optional<Occurrence> best;
  const auto consider = [&](std::int64_t day) {
    const std::int64_t start = day * kDay + std::int64_t{c.start_minute} * 60 - c.utc_offset_seconds;
    if (start + dur <= now) return;
    if (!best || start < best->start) best = Occurrence{start, start + dur};
  };
  if (!c.weekdays.empty()) {
    // From yesterday (an occurrence that spans midnight may still be under way) to a week ahead.
    for (std::int64_t d = today - 1; d <= today + 7; ++d) {
      const int weekday = static_cast<int>(((d % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
      if (std::find(c.weekdays.begin(), c.weekdays.end(), weekday) != c.weekdays.end()) consider(d);
    }
  }
  for (const long d : c.dates) consider(d);
  return best;
}

void Conferences::configure(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  std::map<std::string, State> kept;
  for (const auto& c : config_->conferences)
    if (auto it = state_.find(c.name); it != state_.end()) kept[c.name] = std::move(it->second);
  state_ = std::move(kept);
  render();
}

void Conferences::on_path_test(const std::string& key, const probes::PathTestSummary& p) {
  results_[key] = p;
}

void Conferences::tick(std::int64_t now, const Readiness* readiness) {
  if (!config_ || config_->conferences.empty()) {  // nothing to do each second without a calendar
    set_boosted({});
    return;
  }
  std::map<std::string, Duration> boosted;
  std::map<std::string, const Site*> sites;
  for (const auto& s : config_->sites) sites[s.id] = &s;
  const std::size_t district_level = config_->levels.size() > 1 ? 1 : 0;
  for (const auto& c : config_->conferences) {
    State& st = state_[c.name];
    const auto occ = next(c, now);
    st.active = false;
    if (!occ) continue;
    st.occ = *occ;
    if (st.occurrence != occ->start) {  // a new occurrence: its marks are still to fire
      st.occurrence = occ->start;
      st.fired.clear();
      st.since = 0;
    }
    // Fire every mark that is due and not fired yet (after a late start, only the latest one).
    std::optional<std::int64_t> due;
    for (const auto& p : c.preflight) {
      const auto s = std::chrono::duration_cast<std::chrono::seconds>(p).count();
      if (now >= occ->start - s && now < occ->end && !st.fired.count(s)) due = s;
    }
    if (due) {
      for (const auto& p : c.preflight) {
        const auto s = std::chrono::duration_cast<std::chrono::seconds>(p).count();
        if (s >= *due) st.fired.insert(s);
      }
      if (st.since == 0) st.since = now;
      std::vector<std::string> keys;
      for (const auto& id : c.participants)
        if (auto s = sites.find(id); s != sites.end())
          for (const auto& d : s->second->devices)
            if (d.blocks.count("stamp")) keys.push_back(Config::device_key(*s->second, d));
      ++fired_total_;
      if (request_ && !keys.empty())
        request_(keys, "preflight " + c.name + " T-" + std::to_string(*due / 60) + "m", c.bitrate_bps);
    }
    st.active = st.since != 0 && now < occ->end;
    st.verdicts.clear();
    if (!st.active) continue;
    for (const auto& id : c.participants)
      if (auto s = sites.find(id); s != sites.end())
        for (const auto& d : s->second->devices) {
          auto [b, fresh] = boosted.try_emplace(Config::device_key(*s->second, d), c.preflight_interval);
          if (!fresh) b->second = std::min(b->second, c.preflight_interval);
        }
    for (const auto& id : c.participants) {
      const auto s = sites.find(id);
      if (s == sites.end()) continue;
      const Site& site = *s->second;
      Verdict v;
      v.site = site.id;
      v.name = site.name;
      v.district = district_level < site.chain.size() ? site.chain[district_level] : "";
      v.state = Verdict::Ready;
      const auto fail = [&](const std::string& reason, const std::string& detail) {
        if (v.state == Verdict::NotReady) return;
        v.state = Verdict::NotReady;
        v.reason = reason;
        v.detail = detail;
      };
      std::vector<std::pair<const Device*, Readiness::Reason>> endpoints;
      if (readiness)
        for (const auto& d : site.devices) {
          const auto r = readiness->reason(Config::device_key(site, d));
          if (r != Readiness::Ready && r != Readiness::Unknown) endpoints.emplace_back(&d, r);
        }
      for (const auto& [d, r] : endpoints)
        if (r == Readiness::SiteDown) fail("site_down", "site down or unreachable");
      for (const auto& [d, r] : endpoints)
        if (r == Readiness::OnBackupPath) fail("on_backup_path", "on backup path (primary uplink down)");
      bool pending = false;
      for (const auto& d : site.devices) {
        if (!d.blocks.count("stamp")) continue;
        const auto res = results_.find(Config::device_key(site, d));
        if (res == results_.end() || res->second.finished_unix + 1 < static_cast<double>(st.since)) {
          pending = true;
          continue;
        }
        if (res->second.verdict != probes::PathTestSummary::Verdict::Ok)
          fail(category(res->second.verdict), d.name + ": " + res->second.reason);
      }
      for (const auto& [d, r] : endpoints)
        fail(std::string("endpoint_") + Readiness::name(r), d->name + ": " + Readiness::name(r));
      if (v.state == Verdict::Ready && pending) {
        v.state = Verdict::Pending;
        v.reason = "pending";
        v.detail = "path test not back yet";
      }
      st.verdicts.push_back(std::move(v));
    }
  }
  set_boosted(std::move(boosted));
  render();
}

std::vector<Conferences::Verdict> Conferences::verdicts(const std::string& conference) const {
  const auto it = state_.find(conference);
  return it == state_.end() ? std::vector<Verdict>{} : it->second.verdicts;
}

void Conferences::render() {
  std::string out;
  std::map<std::string, std::string> reports;
  if (config_ && !config_->conferences.empty()) {
    std::string info, next_start, pre, ready, reason;
    for (const auto& c : config_->conferences) {
      const auto st = state_.find(c.name);
      const std::string l = render_labels({{"conference", c.name}});
      char hhmm[32];
      std::snprintf(hhmm, sizeof hhmm, "%02d:%02d", c.start_minute / 60, c.start_minute % 60);
      append_line(info, "siteprobe_conference_info",
                  render_labels({{"conference", c.name},
                                 {"time_zone", c.time_zone},
                                 {"start", hhmm},
                                 {"participants", std::to_string(c.participants.size())}}),
                  1.0);
      const bool known = st != state_.end() && st->second.occurrence >= 0;
      if (known)
        append_line(next_start, "siteprobe_conference_next_start_timestamp_seconds", l,
                    static_cast<double>(st->second.occ.start));
      append_line(pre, "siteprobe_conference_preflight", l, known && st->second.active ? 1.0 : 0.0);
      std::string rep = "Conference " + c.name + " (" + c.time_zone + "): ";
      if (!known) {
        rep += "no occurrence ahead\n";
      } else {
        rep += "starts " + local_time(st->second.occ.start, c.utc_offset_seconds) + ", ends " +
               local_time(st->second.occ.end, c.utc_offset_seconds) +
               "; participants: " + c.participants_text + " (" + std::to_string(c.participants.size()) +
               " sites)\n";
        if (!st->second.active)
          rep += "No pre-flight under way (the first runs " +
                 std::to_string(
                     c.preflight.empty()
                         ? 0
                         : std::chrono::duration_cast<std::chrono::minutes>(c.preflight.front()).count()) +
                 " min before the start).\n";
      }
      if (known && st->second.active) {
        int nr = 0, np = 0;
        std::map<std::string, std::vector<const Verdict*>> by_district;
        for (const auto& v : st->second.verdicts) {
          const std::string sl =
              render_labels({{"conference", c.name}, {"site", v.site}, {"district", v.district}});
          if (v.state != Verdict::Pending)
            append_line(ready, "siteprobe_conference_participant_ready", sl,
                        v.state == Verdict::Ready ? 1.0 : 0.0);
          if (v.state != Verdict::Ready)
            append_line(reason, "siteprobe_conference_participant_not_ready_reason",
                        render_labels({{"conference", c.name},
                                       {"site", v.site},
                                       {"district", v.district},
                                       {"reason", v.reason}}),
                        1.0);
          nr += v.state == Verdict::NotReady;
          np += v.state == Verdict::Pending;
          if (v.state != Verdict::Ready) by_district[v.district].push_back(&v);
        }
        rep +=
            "Pre-flight: " + std::to_string(st->second.verdicts.size() - static_cast<std::size_t>(nr + np)) +
            " ready, " + std::to_string(nr) + " NOT READY, " + std::to_string(np) +
            " pending (path test not back yet)\n" +
            "Participants' ICMP, SIP and H.323 checks run at least every " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(c.preflight_interval).count()) +
            " s until the end.\n";
        for (const auto& [district, vs] : by_district) {
          rep += "\n" + (district.empty() ? std::string("(no district)") : district) + ":\n";
          for (const auto* v : vs)
            rep += "  " + v->name + " (" + v->site + ")  " +
                   (v->state == Verdict::Pending ? "pending" : "NOT READY") + "  " + v->reason + "  " +
                   v->detail + "\n";
        }
      }
      reports[c.name] = rep;
    }
    out += header("siteprobe_conference_info") + info;
    out += header("siteprobe_conference_next_start_timestamp_seconds") + next_start;
    out += header("siteprobe_conference_preflight") + pre;
    out += header("siteprobe_conference_participant_ready") + ready;
    out += header("siteprobe_conference_participant_not_ready_reason") + reason;
  }
  auto t = std::make_shared<const std::string>(std::move(out));
  std::lock_guard<std::mutex> g(mu_);
  text_ = std::move(t);
  reports_ = std::move(reports);
}

Exposition::Parts Conferences::parts() const {
  std::lock_guard<std::mutex> g(mu_);
  return slices(text_);
}

std::string Conferences::report(const std::string& name, bool& found, bool& all_ready) const {
  std::lock_guard<std::mutex> g(mu_);
  const auto it = reports_.find(name);
  found = it != reports_.end();
  all_ready = found && it->second.find("NOT READY") == std::string::npos &&
              it->second.find(" pending") == std::string::npos;
  if (!found) {
    std::string names;
    for (const auto& [n, r] : reports_) names += (names.empty() ? "" : ", ") + n;
    return "No conference \"" + name +
           "\" in the inventory (conferences: " + (names.empty() ? "none" : names) + ")\n";
  }
  return it->second;
}

}  // namespace siteprobe
