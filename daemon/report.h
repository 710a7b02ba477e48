// `siteprobe report`: the monthly availability report (docs/runbook.md#monthly-availability-report).
//
// The report reads raw series from Prometheus at one-minute steps (subqueries at the month's last
// minute), so every number is a count of minutes: exact, and equal to what alerts/
// siteprobe.sla.rules.yml records at 5-minute steps summed over the month. The pure part (minutes
// in, rows and text out) is separate from the HTTP queries so unit tests need no network.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "daemon/http_client.h"
#include "inventory/config.h"

namespace siteprobe::report {

// A down run whose site saw an SNMP reboot from its first minute to this long after its last one
// is an outage by reboot (the agent's sysUpTime is read only once the device answers again).
constexpr std::int64_t kRebootGraceMinutes = 15;

// One site's month, as minute numbers (unix seconds / 60) from the queries.
struct SiteMinutes {
  std::vector<std::int64_t> down;         // siteprobe_site_state == 3
  std::vector<std::int64_t> unreachable;  // == 4: its parent is down; counts against the parent
  std::vector<std::int64_t> endpoint;  // up or degraded, but an endpoint is device_down or call_service_down
  std::vector<std::int64_t> maintenance;  // a site-wide maintenance window is on
  std::vector<std::int64_t> reboots;      // a device's SNMP reboot counter went up
  std::int64_t counted = 0;               // minutes with a known state and no maintenance
};

struct Outcome {
  std::int64_t counted = 0, site_down = 0, reboot = 0, endpoint_down = 0, parent_down = 0, maintenance = 0;
  std::int64_t longest = 0, longest_start = 0;  // the longest outage: minutes, its first minute
  std::int64_t down() const { return site_down + reboot + endpoint_down; }
};

// Maintenance minutes are neither down nor counted; an outage is a run of consecutive minutes
// down by any cause but parent_down.
Outcome compute(const SiteMinutes& m);

struct Row {
  bool total = false;  // a district's subtree, summed
  std::string district, site, name, level;
  double slo = 0;
  Outcome o;
};
// Tree order: the top-level sites, then per district its total and its sites.
std::vector<Row> build_rows(const Config& cfg, const std::map<std::string, SiteMinutes>& by_site);

// "2026-11" in the zone `utc_offset` east of UTC: [start, end) in unix seconds.
bool parse_month(const std::string& ym, int utc_offset, std::int64_t& start, std::int64_t& end);

// csv, md or html. `month` and `zone` only title the page.
std::string render(const std::vector<Row>& rows, const std::string& format, const std::string& month,
                   const std::string& zone, int utc_offset);

// A Prometheus API answer: a matrix's sample times as minutes per `site` label (each > 0 value),
// or a vector's values per site. False with `err` for an error answer or a malformed one.
bool parse_matrix(const std::string& body, std::map<std::string, std::vector<std::int64_t>>& out,
                  std::string& err);
bool parse_vector(const std::string& body, std::map<std::string, double>& out, std::string& err);

// Runs the queries for [start, end) against `prometheus` (its URL's path is kept as a prefix).
bool fetch(const HttpGet& prometheus, std::int64_t start, std::int64_t end,
           std::map<std::string, SiteMinutes>& by_site, std::string& err);

}  // namespace siteprobe::report
