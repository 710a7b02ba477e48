#include "daemon/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <set>

#include "inventory/calendar.h"
#include "util/json.h"
#include "util/text.h"

namespace siteprobe::report {
namespace {

using text::csv_cell;
using text::md_cell;

using inventory_detail::civil_from_days;
using inventory_detail::days_from_civil;
using inventory_detail::floor_div;
using Minutes = std::vector<std::int64_t>;

Minutes sorted_unique(Minutes v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}
Minutes minus(const Minutes& a, const Minutes& b) {
  Minutes o;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(o));
  return o;
}
// Runs of consecutive minutes: [first, last] pairs.
std::vector<std::pair<std::int64_t, std::int64_t>> runs(const Minutes& sorted) {
  std::vector<std::pair<std::int64_t, std::int64_t>> r;
  for (auto m : sorted)
    if (!r.empty() && r.back().second + 1 == m)
      r.back().second = m;
    else
      r.emplace_back(m, m);
  return r;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
std::string availability(const Outcome& o) {
  return o.counted
             ? fmt("%.3f", 100.0 * (1.0 - static_cast<double>(o.down()) / static_cast<double>(o.counted)))
             : "n/a";
}
std::string met(const Row& r) {
  if (!r.o.counted) return "n/a";
  return 100.0 * (1.0 - static_cast<double>(r.o.down()) / static_cast<double>(r.o.counted)) >= r.slo ? "yes"
                                                                                                     : "no";
}
std::string local_time(std::int64_t minute, int utc_offset) {
  if (minute == 0) return "";
  const std::int64_t t = minute * 60 + utc_offset;
  long y = 0;
  unsigned mo = 0, d = 0;
  civil_from_days(static_cast<long>(floor_div(t, 86400)), y, mo, d);
  const std::int64_t s = t - floor_div(t, 86400) * 86400;
  char b[40];
  std::snprintf(b, sizeof b, "%04ld-%02u-%02u %02d:%02d", y, mo, d, static_cast<int>(s / 3600),
                static_cast<int>(s % 3600 / 60));
  return b;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s)
    o += c == '&'    ? "&amp;"
         : c == '<'  ? "&lt;"
         : c == '>'  ? "&gt;"
         : c == '"'  ? "&quot;"
         : c == '\'' ? "&#39;"
                     : std::string(1, c);
  return o;
}

const char* const kColumns[] = {"row",
                                "district",
                                "site",
                                "name",
                                "level",
                                "slo_percent",
                                "availability_percent",
                                "slo_met",
                                "counted_min",
                                "site_down_min",
                                "reboot_min",
                                "endpoint_down_min",
                                "parent_down_min",
                                "longest_outage_min",
                                "longest_outage_start",
                                "maintenance_min"};

std::vector<std::string> cells(const Row& r, int utc_offset) {
  const auto n = [](std::int64_t v) { return std::to_string(v); };
  return {r.total ? "district" : "site",
          r.district,
          r.site,
          r.name,
          r.level,
          fmt("%g", r.slo),
          availability(r.o),
          met(r),
          n(r.o.counted),
          n(r.o.site_down),
          n(r.o.reboot),
          n(r.o.endpoint_down),
          n(r.o.parent_down),
          n(r.o.longest),
          local_time(r.o.longest_start, utc_offset),
          n(r.o.maintenance)};
}

// The answer's data.result, after checking the status.
const json::Value* result(const std::string& body, json::Value& doc, const char* type, std::string& err) {
  if (!json::parse(body, doc, err)) return err = "malformed answer: " + err, nullptr;
  const auto* status = doc.get("status");
  if (status->text != "success") {
    err = "query failed: " + doc.get("errorType")->text + ": " + doc.get("error")->text;
    if (!status->is(json::Value::Type::String)) err = "malformed answer: no status";
    return nullptr;
  }
  const auto* data = doc.get("data");
  const auto* res = data->get("result");
  if (data->get("resultType")->text != type || !res->is(json::Value::Type::Array))
    return err = std::string("malformed answer: no ") + type + " result", nullptr;
  return res;
}
// A sample [time, "value"]: false unless it is one.
bool sample(const json::Value& p, double& t, double& v) {
  if (!p.is(json::Value::Type::Array) || p.items.size() != 2 || !p.items[0].is(json::Value::Type::Number) ||
      !p.items[1].is(json::Value::Type::String))
    return false;
  char* e1 = nullptr;
  char* e2 = nullptr;
  t = std::strtod(p.items[0].text.c_str(), &e1);
  v = std::strtod(p.items[1].text.c_str(), &e2);
  return *e1 == '\0' && *e2 == '\0' && std::isfinite(t) && std::fabs(t) < 1e13;
}
const std::string* site_of(const json::Value& series) {
  const auto* s = series.get("metric")->get("site");
  return s->is(json::Value::Type::String) ? &s->text : nullptr;
}

std::string encode(const std::string& s) {
  std::string o;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      o += ch;
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", static_cast<unsigned>(c));
      o += b;
    }
  }
  return o;
}

}  // namespace

Outcome compute(const SiteMinutes& m) {
  Outcome o;
  const Minutes maint = sorted_unique(m.maintenance), reboots = sorted_unique(m.reboots);
  const Minutes down = minus(sorted_unique(m.down), maint);
  const Minutes unreachable = minus(minus(sorted_unique(m.unreachable), maint), down);
  const Minutes endpoint = minus(minus(minus(sorted_unique(m.endpoint), maint), down), unreachable);
  o.maintenance = static_cast<std::int64_t>(maint.size());
  o.counted = m.counted;
  o.parent_down = static_cast<std::int64_t>(unreachable.size());
  o.endpoint_down = static_cast<std::int64_t>(endpoint.size());
  for (const auto& [a, b] : runs(down)) {
    const auto r = std::lower_bound(reboots.begin(), reboots.end(), a);
    (r != reboots.end() && *r <= b + kRebootGraceMinutes ? o.reboot : o.site_down) += b - a + 1;
  }
  Minutes all = down;
  all.insert(all.end(), endpoint.begin(), endpoint.end());
  for (const auto& [a, b] : runs(sorted_unique(all)))
    if (b - a + 1 > o.longest) o.longest = b - a + 1, o.longest_start = a;
  return o;
}

std::vector<Row> build_rows(const Config& cfg, const std::map<std::string, SiteMinutes>& by_site) {
  std::vector<Row> top;
  std::vector<std::string> districts;
  std::map<std::string, std::vector<Row>> groups;
  std::map<std::string, Row> totals;
  for (const auto& s : cfg.sites) {
    Row r;
    r.site = s.id, r.name = s.name, r.level = s.level, r.slo = cfg.sla.slo_of(s);
    const auto it = by_site.find(s.id);
    r.o = compute(it == by_site.end() ? SiteMinutes{} : it->second);
    if (s.level_index == 0 || s.chain.size() < 2 || s.chain[1].empty()) {
      top.push_back(r);
      continue;
    }
    r.district = s.chain[1];
    if (!groups.count(r.district)) districts.push_back(r.district);
    groups[r.district].push_back(r);
    Row& t = totals[r.district];
    t.total = true, t.district = r.district;
    if (s.id == r.district) t.name = s.name, t.level = s.level, t.slo = r.slo;
    t.o.counted += r.o.counted, t.o.site_down += r.o.site_down, t.o.reboot += r.o.reboot;
    t.o.endpoint_down += r.o.endpoint_down, t.o.parent_down += r.o.parent_down,
        t.o.maintenance += r.o.maintenance;
    if (r.o.longest > t.o.longest) t.o.longest = r.o.longest, t.o.longest_start = r.o.longest_start;
  }
  for (auto& r : top) r.district = "";
  for (const auto& d : districts) {
    top.push_back(totals[d]);
    top.insert(top.end(), groups[d].begin(), groups[d].end());
  }
  return top;
}

bool parse_month(const std::string& ym, int utc_offset, std::int64_t& start, std::int64_t& end) {
  if (ym.size() != 7 || ym[4] != '-' || ym.find_first_not_of("0123456789", 0) != 4 ||
      ym.find_first_not_of("0123456789", 5) != std::string::npos)
    return false;
  const long y = std::atol(ym.substr(0, 4).c_str());
  const unsigned m = static_cast<unsigned>(std::atoi(ym.substr(5).c_str()));
  if (y < 1970 || m < 1 || m > 12) return false;
  start = std::int64_t{days_from_civil(y, m, 1)} * 86400 - utc_offset;
  end = std::int64_t{days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1)} * 86400 - utc_offset;
  return true;
}

std::string render(const std::vector<Row>& rows, const std::string& format, const std::string& month,
                   const std::string& zone, int utc_offset) {
  std::string o;
  if (format == "csv") {
    for (const char* c : kColumns) o += std::string(o.empty() ? "" : ",") + c;
    o += "\r\n";
    for (const auto& r : rows) {
      std::string line;
      for (const auto& c : cells(r, utc_offset)) line += (line.empty() ? "" : ",") + csv_cell(c);
      o += line + "\r\n";
    }
    return o;
  }
  if (format == "md") {
    o = "# Availability " + month + " (" + zone + ")\n\n|";
    std::string sep = "|";
    for (const char* c : kColumns) o += std::string(" ") + c + " |", sep += "---|";
    o += "\n" + sep + "\n";
    for (const auto& r : rows) {
      o += "|";
      for (const auto& c : cells(r, utc_offset)) o += " " + md_cell(r.total ? "**" + c + "**" : c) + " |";
      o += "\n";
    }
    return o;
  }
  const std::string title = "Availability " + html_escape(month) + " (" + html_escape(zone) + ")";
  o = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + title +
      "</title>\n<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:"
      "12px}th,td{border:1px solid #999;padding:2px 4px;text-align:right}td.t,th{text-align:left}"
      "tr.total{background:#e8eef8;font-weight:bold}td.no{color:#b00}th{background:#ddd}\n"
      "@media print{@page{size:A4 landscape;margin:1cm}body{margin:0}table{font-size:9px}"
      "tr{page-break-inside:avoid}thead{display:table-header-group}}</style></head>\n<body><h1>" +
      title + "</h1>\n<table><thead><tr>";
  for (const char* c : kColumns) o += std::string("<th>") + c + "</th>";
  o += "</tr></thead>\n<tbody>\n";
  for (const auto& r : rows) {
    o += r.total ? "<tr class=\"total\">" : "<tr>";
    const auto cs = cells(r, utc_offset);
    for (std::size_t i = 0; i < cs.size(); ++i)
      o += std::string(i < 5           ? "<td class=\"t\">"
                       : cs[i] == "no" ? "<td class=\"no\">"
                                       : "<td>") +
           html_escape(cs[i]) + "</td>";
    o += "</tr>\n";
  }
  return o + "</tbody></table>\n</body></html>\n";
}

bool parse_matrix(const std::string& body, std::map<std::string, std::vector<std::int64_t>>& out,
                  std::string& err) {
  json::Value doc;
  const auto* res = result(body, doc, "matrix", err);
  if (!res) return false;
  for (const auto& series : res->items) {
    const auto* site = site_of(series);
    const auto* values = series.get("values");
    if (!site || !values->is(json::Value::Type::Array))
      return err = "malformed answer: a series without site or values", false;
    auto& mins = out[*site];
    for (const auto& p : values->items) {
      double t = 0, v = 0;
      if (!sample(p, t, v)) return err = "malformed answer: a sample is not [time, \"value\"]", false;
      if (v > 0) mins.push_back(floor_div(std::llround(t), 60));
    }
  }
  return true;
}

bool parse_vector(const std::string& body, std::map<std::string, double>& out, std::string& err) {
  json::Value doc;
  const auto* res = result(body, doc, "vector", err);
  if (!res) return false;
  for (const auto& series : res->items) {
    const auto* site = site_of(series);
    double t = 0, v = 0;
    if (!site || !sample(*series.get("value"), t, v))
      return err = "malformed answer: a bad vector sample", false;
    out[*site] = std::max(out[*site], v);
  }
  return true;
}

bool fetch(const HttpGet& prometheus, std::int64_t start, std::int64_t end,
           std::map<std::string, SiteMinutes>& by_site, std::string& err) {
  // Steps at every minute of [start, end): evaluated at the last minute, a range one second short
  // of the month holds exactly its minutes (left-open in Prometheus 3, left-closed in 2).
  const std::string range = "[" + std::to_string(end - start - 1) + "s:1m]";
  const std::string at = std::to_string(end - 60);
  std::string prefix = prometheus.url.substr(prometheus.url.find("//") + 2);
  prefix = prefix.find('/') == std::string::npos ? "" : prefix.substr(prefix.find('/'));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  const auto get = [&](const std::string& q, std::string& body) {
    const std::string path = prefix + "/api/v1/query?query=" + encode(q) + "&time=" + at;
    std::string e;
    const int status = http_get(prometheus, path, body, e);
    if (status == 0) return err = "no answer from " + prometheus.url + ": " + e, false;
    if (status != 200 && status != 400 && status != 422 && status != 503)
      return err = prometheus.url + " answered HTTP " + std::to_string(status), false;
    return true;
  };
  const std::string not_maint = " unless on (job, instance, site) siteprobe_maintenance{device=\"\"}";
  const std::pair<Minutes SiteMinutes::*, std::string> lists[] = {
      {&SiteMinutes::down, "(siteprobe_site_state == 3)"},
      {&SiteMinutes::unreachable, "(siteprobe_site_state == 4)"},
      {&SiteMinutes::maintenance, "(max by (site) (siteprobe_maintenance{device=\"\"}))"},
      {&SiteMinutes::endpoint,
       "(max by (site) (siteprobe_endpoint_not_ready_reason{reason=~\"device_down|call_service_down\"}) and "
       "on "
       "(site) (siteprobe_site_state >= 1 <= 2))"},
      {&SiteMinutes::reboots,
       "(sum by (site) (siteprobe_snmp_device_reboots_total - siteprobe_snmp_device_reboots_total offset 1m) "
       "> 0)"},
  };
  for (const auto& [field, q] : lists) {
    std::string body;
    std::map<std::string, Minutes> got;
    if (!get(q + range, body) || !parse_matrix(body, got, err)) return false;
    for (auto& [site, mins] : got) by_site[site].*field = std::move(mins);
  }
  std::string body;
  std::map<std::string, double> counted;
  if (!get("count_over_time(((siteprobe_site_state >= 1)" + not_maint + ")" + range + ")", body) ||
      !parse_vector(body, counted, err))
    return false;
  for (const auto& [site, n] : counted) by_site[site].counted = std::llround(n);
  return true;
}

}  // namespace siteprobe::report
