// Maintenance windows: `maintenance:` (docs/inventory.md#maintenance). Parsed after the sites, so
// targets are checked against the tree, and after each other, so overlaps are caught.
#include <algorithm>
#include <ctime>

#include "inventory/calendar.h"
#include "inventory/parser.h"

namespace siteprobe {
namespace {

constexpr std::int64_t kDay = 86400;
using inventory_detail::floor_div;

}  // namespace

std::optional<std::pair<std::int64_t, std::int64_t>> maintenance_occurrence(const MaintenanceWindow& w,
                                                                            std::int64_t now) {
  if (w.end != 0) return now < w.end ? std::optional(std::pair(w.start, w.end)) : std::nullopt;
  const std::int64_t len = ((w.to_minute - w.from_minute + 1440) % 1440) * std::int64_t{60};
  const std::int64_t today = floor_div(now + w.utc_offset_seconds, kDay);
  // From yesterday (a window past midnight may be under way) to two months ahead (a day 31 skips
  // the months without one).
  for (std::int64_t d = today - 1; d <= today + 62; ++d) {
    bool on = std::find(w.weekdays.begin(), w.weekdays.end(), static_cast<int>(((d % 7) + 11) % 7)) !=
              w.weekdays.end();
    if (!on && !w.month_days.empty()) {
      long y = 0;
      unsigned m = 0, md = 0;
      inventory_detail::civil_from_days(static_cast<long>(d), y, m, md);
      on = std::find(w.month_days.begin(), w.month_days.end(), static_cast<int>(md)) != w.month_days.end();
    }
    const std::int64_t start = d * kDay + std::int64_t{w.from_minute} * 60 - w.utc_offset_seconds;
    if (on && start + len > now) return std::pair(start, start + len);
  }
  return std::nullopt;
}

namespace inventory_detail {

std::optional<int> Parser::hhmm_of(const YAML::Node& n, const std::string& path) {
  auto v = string_of(n, path);
  if (!v) return std::nullopt;
  const std::string& t = *v;
  if (t.size() != 5 || t[2] != ':' || !isdigit(t[0]) || !isdigit(t[1]) || !isdigit(t[3]) || !isdigit(t[4]) ||
      std::stoi(t.substr(0, 2)) > 23 || std::stoi(t.substr(3)) > 59) {
    error(n.Mark(), path, "\"" + t + "\" is not a time HH:MM (00:00..23:59)");
    return std::nullopt;
  }
  return std::stoi(t.substr(0, 2)) * 60 + std::stoi(t.substr(3));
}

bool Parser::weekdays_of(const YAML::Node& v, const std::string& path, std::vector<int>& out) {
  static const char* const kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  bool ok = true;
  if (auto l = string_list(v, path, false))
    for (std::size_t i = 0; i < l->size(); ++i) {
      std::string d = (*l)[i];
      std::transform(d.begin(), d.end(), d.begin(), [](unsigned char ch) { return std::tolower(ch); });
      const auto* it =
          std::find_if(std::begin(kDays), std::end(kDays), [&](const char* k) { return d == k; });
      if (it == std::end(kDays))
        error(v[i].Mark(), path,
              "unknown day \"" + (*l)[i] + "\" (allowed: mon, tue, wed, thu, fri, sat, sun)"),
            ok = false;
      else
        out.push_back(static_cast<int>(it - std::begin(kDays)));
    }
  return ok;
}

bool Parser::select_sites(const YAML::Node& e, const std::string& path, std::set<std::string>& sites,
                          std::vector<std::string>* devices, std::string& text) {
  std::string root;
  bool subtree = false;
  if (e.IsScalar()) {
    root = e.Scalar();
  } else if (e.IsMap() && e.size() == 1 && check_map(e, path, {"district", "subtree"})) {
    const auto kv = *e.begin();
    root = kv.second.IsScalar() ? kv.second.Scalar() : "";
    subtree = true;
  } else {
    error(e.Mark(), path,
          std::string("must be a site id, {district: ID} or {subtree: ID}") +
              (devices ? " or SITE/DEVICE" : ""));
    return false;
  }
  const auto slash = root.find('/');
  if (devices && !subtree && slash != std::string::npos) {
    const std::string site = root.substr(0, slash), dev = root.substr(slash + 1);
    for (const auto& s : cfg_.sites)
      if (s.id == site)
        for (const auto& d : s.devices)
          if (d.name == dev) {
            devices->push_back(root);
            text += (text.empty() ? "" : ", ") + root;
            return true;
          }
    error(e.Mark(), path, "unknown device \"" + root + "\"");
    return false;
  }
  bool found = false;
  for (const auto& s : cfg_.sites)
    if (s.id == root || (subtree && std::find(s.chain.begin(), s.chain.end(), root) != s.chain.end()))
      sites.insert(s.id), found = true;
  if (!found) {
    error(e.Mark(), path, "unknown site \"" + root + "\"");
    return false;
  }
  text += (text.empty() ? "" : ", ") + std::string(subtree ? "subtree " : "") + root;
  return true;
}

void Parser::parse_maintenance(const YAML::Node& n) {
  if (!n.IsSequence()) {
    error(n.Mark(), "maintenance", "must be a list of windows");
    return;
  }
  std::set<std::string> names;
  std::vector<YAML::Mark> marks;
  for (std::size_t wi = 0; wi < n.size(); ++wi) {
    const YAML::Node c = n[wi];
    const std::string path = "maintenance[" + std::to_string(wi) + "]";
    if (!check_map(c, path,
                   {"name", "reason", "ticket", "targets", "start", "end", "days", "month_days", "from", "to",
                    "time_zone"}))
      continue;
    MaintenanceWindow w;
    bool ok = true;
    const auto need = [&](const char* key) {
      if (c[key]) return true;
      error(c.Mark(), path, std::string("missing required key \"") + key + "\"");
      return ok = false;
    };
    if (need("name"))
      if (auto v = string_of(c["name"], path + ".name")) {
        w.name = *v;
        if (!valid_id(*v))
          error(c["name"].Mark(), path + ".name", "invalid name (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)"),
              ok = false;
        else if (!names.insert(*v).second)
          error(c["name"].Mark(), path + ".name", "duplicate window name \"" + *v + "\""), ok = false;
      }
    if (need("reason")) {
      if (auto v = string_of(c["reason"], path + ".reason")) w.reason = *v;
      if (w.reason.empty()) error(c["reason"].Mark(), path + ".reason", "must not be empty"), ok = false;
    }
    if (auto v = c["ticket"])
      if (auto t = string_of(v, path + ".ticket")) w.ticket = *t;
    if (auto v = c["time_zone"])
      if (auto z = string_of(v, path + ".time_zone")) {
        std::string why;
        if (auto off = utc_offset(*z, why))
          w.time_zone = *z, w.utc_offset_seconds = *off;
        else
          error(v.Mark(), path + ".time_zone", "\"" + *z + "\": " + why), ok = false;
      }
    const bool one_off = c["start"] || c["end"];
    const bool recurring = c["days"] || c["month_days"] || c["from"] || c["to"];
    if (one_off == recurring) {
      error(c.Mark(), path,
            one_off ? "give start and end (one-off) or days/month_days with from and to (recurring), not both"
                    : "missing its time: start and end (one-off), or days or month_days with from and to");
      ok = false;
    } else if (one_off) {
      const auto when = [&](const char* key) -> std::optional<std::int64_t> {
        if (!need(key)) return std::nullopt;
        auto v = string_of(c[key], path + "." + key);
        if (!v) return std::nullopt;
        int y = 0, mo = 0, d = 0, h = 0, mi = 0;
        char tail = 0;
        if (v->size() != 16 ||
            std::sscanf(v->c_str(), "%4d-%2d-%2d %2d:%2d%c", &y, &mo, &d, &h, &mi, &tail) != 5 || mo < 1 ||
            mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || y < 2000 || y > 2100) {
          error(c[key].Mark(), path + "." + key, "\"" + *v + "\" is not a local time \"YYYY-MM-DD HH:MM\"");
          return std::nullopt;
        }
        return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * kDay +
               std::int64_t{h} * 3600 + std::int64_t{mi} * 60 - w.utc_offset_seconds;
      };
      const auto s = when("start"), e = when("end");
      if (!s || !e)
        ok = false;
      else if (*e <= *s)
        error(c["end"].Mark(), path + ".end", "ends before it starts (" + c["start"].Scalar() + ")"),
            ok = false;
      else if (*e - *s > 31 * kDay)
        error(c["end"].Mark(), path + ".end", "longer than 31 days: is the date right?"), ok = false;
      else
        w.start = *s, w.end = *e;
    } else {
      if (c["days"] && c["month_days"])
        error(c["month_days"].Mark(), path, "give days or month_days, not both"), ok = false;
      if (auto v = c["days"])
        if (!weekdays_of(v, path + ".days", w.weekdays)) ok = false;
      if (auto v = c["month_days"]) {
        if (!v.IsSequence() || v.size() == 0) {
          error(v.Mark(), path + ".month_days", "must be a list of days of the month, like [1, 15]"),
              ok = false;
        } else {
          for (std::size_t i = 0; i < v.size(); ++i)
            if (auto d = int_of(v[i], path + ".month_days", 1, 31))
              w.month_days.push_back(static_cast<int>(*d));
        }
      }
      if (need("from") && need("to")) {
        const auto f = hhmm_of(c["from"], path + ".from"), t = hhmm_of(c["to"], path + ".to");
        if (!f || !t)
          ok = false;
        else if (*f == *t)
          error(c["to"].Mark(), path + ".to", "equals from: an empty window"), ok = false;
        else
          w.from_minute = *f, w.to_minute = *t;
      }
    }
    if (need("targets")) {
      const YAML::Node t = c["targets"];
      std::set<std::string> chosen;
      if (!t.IsSequence() || t.size() == 0) {
        error(t.Mark(), path + ".targets",
              "must be a list of site ids, {district: ID}, {subtree: ID} or SITE/DEVICE");
        ok = false;
      } else {
        for (std::size_t i = 0; i < t.size(); ++i)
          ok = select_sites(t[i], path + ".targets[" + std::to_string(i) + "]", chosen, &w.devices,
                            w.targets_text) &&
               ok;
      }
      for (const auto& s : cfg_.sites)
        if (chosen.count(s.id)) w.sites.push_back(s.id);
    }
    if (!ok) continue;
    // Two windows on one site or device that are on at the same time are one mistake or the other.
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (std::size_t j = 0; j < cfg_.maintenance.size(); ++j) {
      const MaintenanceWindow& o = cfg_.maintenance[j];
      std::string shared;
      for (const auto& s : w.sites)
        if (std::find(o.sites.begin(), o.sites.end(), s) != o.sites.end()) shared = s;
      const auto site_of = [](const std::string& key) { return key.substr(0, key.find('/')); };
      for (const auto& d : w.devices)
        if (std::find(o.devices.begin(), o.devices.end(), d) != o.devices.end() ||
            std::find(o.sites.begin(), o.sites.end(), site_of(d)) != o.sites.end())
          shared = d;
      for (const auto& d : o.devices)
        if (std::find(w.sites.begin(), w.sites.end(), site_of(d)) != w.sites.end()) shared = d;
      if (shared.empty()) continue;
      // Walk both calendars for a year from now.
      const auto occ = [](const MaintenanceWindow& x, std::int64_t at, std::int64_t& s, std::int64_t& e) {
        const auto r = maintenance_occurrence(x, at);
        if (r) s = r->first, e = r->second;
        return r.has_value();
      };
      // From now, or from the day before a one-off window that is further ahead, for a year.
      std::int64_t from = now;
      for (const MaintenanceWindow* x : {static_cast<const MaintenanceWindow*>(&w), &o})
        if (x->end != 0 && x->start - kDay > from) from = x->start - kDay;
      std::int64_t as = 0, ae = 0, bs = 0, be = 0;
      bool ha = occ(w, from, as, ae), hb = occ(o, from, bs, be);
      while (ha && hb && as < from + 366 * kDay && bs < from + 366 * kDay) {
        if (as < be && bs < ae) {
          char when[32];
          const auto local = static_cast<time_t>(std::max(as, bs) + w.utc_offset_seconds);
          std::tm tm{};
          gmtime_r(&local, &tm);
          std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
          error(c.Mark(), path,
                "overlaps window \"" + o.name + "\" (line " + std::to_string(marks[j].line + 1) + ") on " +
                    shared + " at " + when + " " + w.time_zone + "; merge them or move one");
          ok = false;
          break;
        }
        if (ae <= be)
          ha = occ(w, ae, as, ae);
        else
          hb = occ(o, be, bs, be);
      }
    }
    if (!ok) continue;
    cfg_.maintenance.push_back(std::move(w));
    marks.push_back(c.Mark());
  }
}

}  // namespace inventory_detail
}  // namespace siteprobe
