// The conference calendar: `conferences:` (docs/inventory.md#conferences). Parsed after the sites,
// so participants are checked against the tree.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "inventory/calendar.h"
#include "inventory/parser.h"

namespace siteprobe::inventory_detail {

long days_from_civil(long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long>(doe) - 719468;
}

void civil_from_days(long z, long& y, unsigned& m, unsigned& d) {
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<long>(yoe) + era * 400 + (m <= 2);
}

std::optional<int> utc_offset(const std::string& tz, std::string& why) {
  if (tz == "UTC" || tz == "Etc/UTC") return 0;
  if (tz.size() == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':' && isdigit(tz[1]) && isdigit(tz[2]) &&
      isdigit(tz[4]) && isdigit(tz[5])) {
    const int h = (tz[1] - '0') * 10 + (tz[2] - '0'), m = (tz[4] - '0') * 10 + (tz[5] - '0');
    if (h > 14 || m > 59) return why = "offset out of range", std::nullopt;
    return (tz[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  }
  if (tz.empty() || tz.find("..") != std::string::npos || tz[0] == '/' ||
      tz.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
          std::string::npos)
    return why = "not a time zone name", std::nullopt;
  std::ifstream f("/usr/share/zoneinfo/" + tz, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (!f && data.empty()) {
    if (tz == "Asia/Ho_Chi_Minh" || tz == "Asia/Saigon" || tz == "Asia/Bangkok") return 7 * 3600;
    return why = "unknown time zone (not in /usr/share/zoneinfo; or write an offset like +07:00)",
           std::nullopt;
  }
  // TZif v2+: the last line is a POSIX TZ string: "<+07>-7", "ICT-7", "UTC0", "EST5EDT,M3.2.0,...".
  if (data.size() < 2 || data.back() != '\n') return why = "not a TZif file", std::nullopt;
  const auto start = data.rfind('\n', data.size() - 2);
  const std::string footer = data.substr(start + 1, data.size() - start - 2);
  if (footer.find(',') != std::string::npos)
    return why =
               "has daylight-saving rules, which the calendar does not follow; write a fixed offset like "
               "+07:00",
           std::nullopt;
  std::size_t i = 0;
  if (i < footer.size() && footer[i] == '<') {
    i = footer.find('>');
    if (i == std::string::npos) return why = "unreadable TZif footer", std::nullopt;
    ++i;
  } else {
    while (i < footer.size() && isalpha(static_cast<unsigned char>(footer[i]))) ++i;
  }
  // POSIX offsets are west of UTC: "-7" is UTC+7.
  int sign = -1;
  if (i < footer.size() && (footer[i] == '+' || footer[i] == '-')) sign = footer[i++] == '-' ? 1 : -1;
  int h = 0, m = 0;
  while (i < footer.size() && isdigit(static_cast<unsigned char>(footer[i])))
    h = h * 10 + (footer[i++] - '0');
  if (i < footer.size() && footer[i] == ':') {
    ++i;
    while (i < footer.size() && isdigit(static_cast<unsigned char>(footer[i])))
      m = m * 10 + (footer[i++] - '0');
  }
  if (i != footer.size() || h > 24)
    return why = "daylight-saving or unreadable TZif footer \"" + footer + "\"", std::nullopt;
  return sign * (h * 3600 + m * 60);
}

void Parser::parse_conferences(const YAML::Node& n) {
  if (!n.IsSequence()) {
    error(n.Mark(), "conferences", "must be a list of conferences");
    return;
  }
  std::map<std::string, const Site*> by_id;
  for (const auto& s : cfg_.sites) by_id[s.id] = &s;
  std::set<std::string> names;
  for (std::size_t ci = 0; ci < n.size(); ++ci) {
    const YAML::Node c = n[ci];
    const std::string path = "conferences[" + std::to_string(ci) + "]";
    if (!check_map(c, path,
                   {"name", "days", "dates", "start", "time_zone", "duration", "bitrate_kbps", "participants",
                    "preflight", "preflight_interval"}))
      continue;
    Conference conf;
    bool ok = true;
    const auto need = [&](const char* key) {
      if (c[key]) return true;
      error(c.Mark(), path, std::string("missing required key \"") + key + "\"");
      return ok = false;
    };
    if (need("name"))
      if (auto v = string_of(c["name"], path + ".name")) {
        conf.name = *v;
        if (!valid_id(*v))
          error(c["name"].Mark(), path + ".name", "invalid name (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)"),
              ok = false;
        else if (!names.insert(*v).second)
          error(c["name"].Mark(), path + ".name", "duplicate conference name \"" + *v + "\""), ok = false;
      }
    if (c["days"] && c["dates"]) error(c["dates"].Mark(), path, "give days or dates, not both"), ok = false;
    if (!c["days"] && !c["dates"])
      error(c.Mark(), path, "missing required key \"days\" or \"dates\""), ok = false;
    if (auto v = c["days"])
      if (!weekdays_of(v, path + ".days", conf.weekdays)) ok = false;
    if (auto v = c["dates"]) {
      if (auto l = string_list(v, path + ".dates", false))
        for (std::size_t i = 0; i < l->size(); ++i) {
          int y = 0, mo = 0, d = 0;
          char tail = 0;
          const std::string& t = (*l)[i];
          if (t.size() != 10 || std::sscanf(t.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3 || mo < 1 ||
              mo > 12 || d < 1 || d > 31 || y < 2000 || y > 2100) {
            error(v[i].Mark(), path + ".dates", "\"" + t + "\" is not a date YYYY-MM-DD"), ok = false;
            continue;
          }
          conf.dates.push_back(days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)));
        }
    }
    if (need("start")) {
      if (auto m = hhmm_of(c["start"], path + ".start"))
        conf.start_minute = *m;
      else
        ok = false;
    }
    if (auto v = c["time_zone"])
      if (auto z = string_of(v, path + ".time_zone")) {
        std::string why;
        if (auto off = utc_offset(*z, why)) {
          conf.time_zone = *z;
          conf.utc_offset_seconds = *off;
        } else {
          error(v.Mark(), path + ".time_zone", "\"" + *z + "\": " + why), ok = false;
        }
      }
    using namespace std::chrono;
    if (need("duration"))
      if (auto d = duration_of(c["duration"], path + ".duration", minutes(1), hours(24))) conf.duration = *d;
    if (auto v = c["bitrate_kbps"])  // as stamp.bitrate_kbps
      if (auto k = int_of(v, path + ".bitrate_kbps", 8, 1000000))
        conf.bitrate_bps = static_cast<double>(*k) * 1000;
    if (auto v = c["preflight_interval"])
      if (auto d = duration_of(v, path + ".preflight_interval", seconds(1), minutes(10)))
        conf.preflight_interval = *d;
    conf.preflight = {minutes(60), minutes(15), minutes(5)};
    if (auto v = c["preflight"]) {
      if (!v.IsSequence() || v.size() == 0) {
        error(v.Mark(), path + ".preflight",
              "must be a list of durations before the start, like [60m, 15m, 5m]");
        ok = false;
      } else {
        conf.preflight.clear();
        for (std::size_t i = 0; i < v.size(); ++i)
          if (auto d = duration_of(v[i], path + ".preflight", minutes(1), hours(24)))
            conf.preflight.push_back(*d);
        std::sort(conf.preflight.rbegin(), conf.preflight.rend());
      }
    }
    if (need("participants")) {
      const YAML::Node p = c["participants"];
      std::set<std::string> chosen;
      const auto add_tree = [&](const std::string& root) {
        for (const auto& s : cfg_.sites)
          if (s.id == root || std::find(s.chain.begin(), s.chain.end(), root) != s.chain.end())
            chosen.insert(s.id);
      };
      if (p.IsScalar() && p.Scalar() == "all") {
        for (const auto& s : cfg_.sites) chosen.insert(s.id);
        conf.participants_text = "all";
      } else if (p.IsSequence()) {
        for (std::size_t i = 0; i < p.size(); ++i) {
          const YAML::Node e = p[i];
          const std::string ep = path + ".participants[" + std::to_string(i) + "]";
          std::string root;
          bool subtree = false;
          if (e.IsScalar()) {
            root = e.Scalar();
          } else if (e.IsMap() && check_map(e, ep, {"district", "subtree"}) && e.size() == 1) {
            const auto kv = *e.begin();
            root = kv.second.IsScalar() ? kv.second.Scalar() : "";
            subtree = true;
          } else {
            error(e.Mark(), ep, "must be a site id, {district: ID} or {subtree: ID}"), ok = false;
            continue;
          }
          if (!by_id.count(root)) {
            error(e.Mark(), ep, "unknown site \"" + root + "\""), ok = false;
            continue;
          }
          if (subtree)
            add_tree(root);
          else
            chosen.insert(root);
          conf.participants_text +=
              std::string(conf.participants_text.empty() ? "" : ", ") + (subtree ? "subtree " : "") + root;
        }
      } else {
        error(p.Mark(), path + ".participants", "must be all, or a list of site ids and {district: ID}"),
            ok = false;
      }
      for (const auto& s : cfg_.sites)
        if (chosen.count(s.id)) conf.participants.push_back(s.id);
    }
    if (ok) cfg_.conferences.push_back(std::move(conf));
  }
}

}  // namespace siteprobe::inventory_detail
