// Maintenance windows (inventory/maintenance.cpp, daemon/maintenance.h) on an injected clock.
#include "daemon/maintenance.h"

#include <catch2/catch.hpp>

#include "inventory/calendar.h"
#include "probes/registry.h"

using namespace siteprobe;

namespace {

const char* kInv = R"(
sites:
  - {id: p, name: Tỉnh, level: province, devices: [{name: router, address: 127.0.0.1, role: router}]}
  - {id: d1, name: Huyện 1, level: district, parent: p, devices: [{name: router, address: 127.0.0.2, role: router}]}
  - {id: d1.c1, name: Xã 1, level: commune, parent: d1, devices: [{name: router, address: 127.0.0.3, role: router},
     {name: vc, address: 127.0.0.6, role: vc_endpoint}]}
  - {id: d2, name: Huyện 2, level: district, parent: p, devices: [{name: router, address: 127.0.0.4, role: router}]}
maintenance:
  - {name: vnpt-sunday, reason: VNPT carrier maintenance, ticket: CHG-114, days: [sun], from: "22:00", to: "02:00",
     targets: [{subtree: d1}]}
  - {name: firmware, reason: "firmware \"push\"", start: "2026-12-10 23:00", end: "2026-12-11 01:00",
     targets: [d2, d1.c1/vc]}
  - {name: month-end, reason: power test, month_days: [31], from: "06:00", to: "07:00", time_zone: "+09:00", targets: [p]}
)";

// 2026-12-06 is a Sunday; 22:00 in Asia/Ho_Chi_Minh (UTC+7) is 15:00 UTC.
constexpr std::int64_t kSun2200 = 1796569200;
constexpr std::int64_t kMin = 60, kHour = 3600, kDay = 86400;

std::shared_ptr<const Config> load(const std::string& text) {
  auto r = probes::parse_inventory(text, "m.yml");
  INFO((r.errors.empty() ? "" : r.errors.front()));
  REQUIRE(r.config);
  return r.config;
}

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string text(const Maintenance& m) {
  std::string out;
  m.exposition()->render(out);
  return out;
}

}  // namespace

TEST_CASE("maintenance: weekly across midnight, one-off, a monthly day that some months lack") {
  auto cfg = load(kInv);
  REQUIRE(cfg->maintenance.size() == 3);
  const auto& weekly = cfg->maintenance[0];
  CHECK(weekly.sites == std::vector<std::string>{"d1", "d1.c1"});
  auto o = maintenance_occurrence(weekly, kSun2200 - 1);
  REQUIRE(o);
  CHECK(o->first == kSun2200);
  CHECK(o->second == kSun2200 + 4 * kHour);                  // to 02:00 the next day
  o = maintenance_occurrence(weekly, kSun2200 + 3 * kHour);  // Monday 01:00: still on
  CHECK(o->first == kSun2200);
  o = maintenance_occurrence(weekly, kSun2200 + 4 * kHour);  // over: next Sunday
  CHECK(o->first == kSun2200 + 7 * kDay);

  const auto& once = cfg->maintenance[1];
  CHECK(once.devices == std::vector<std::string>{"d1.c1/vc"});
  CHECK(once.sites == std::vector<std::string>{"d2"});
  const std::int64_t thu2300 = kSun2200 + 4 * kDay + kHour;  // 2026-12-10 23:00 +07:00
  o = maintenance_occurrence(once, thu2300 - kDay);
  REQUIRE(o);
  CHECK(o->first == thu2300);
  CHECK(o->second == thu2300 + 2 * kHour);
  CHECK(!maintenance_occurrence(once, thu2300 + 2 * kHour));  // a one-off window that is over

  // Day 31 at 06:00 +09:00: 2026-12-31, then 2027-01-31, skipping February to 2027-03-31.
  const auto& month = cfg->maintenance[2];
  const std::int64_t dec31 = inventory_detail::days_from_civil(2026, 12, 31) * kDay + 6 * kHour - 9 * kHour;
  o = maintenance_occurrence(month, kSun2200);
  REQUIRE(o);
  CHECK(o->first == dec31);
  o = maintenance_occurrence(month, inventory_detail::days_from_civil(2027, 2, 1) * kDay);
  REQUIRE(o);
  CHECK(o->first == inventory_detail::days_from_civil(2027, 3, 31) * kDay - 3 * kHour);
}

TEST_CASE("maintenance: the series follow the windows, and a reload during a window keeps it on") {
  auto cfg = load(kInv);
  Maintenance m;
  m.configure(cfg);
  m.tick(kSun2200 - kMin);
  std::string t = text(m);
  CHECK(!has(t, "siteprobe_maintenance{"));
  CHECK(has(t,
            "siteprobe_maintenance_window_active{reason=\"VNPT carrier maintenance\",ticket=\"CHG-114\","
            "window=\"vnpt-sunday\"} 0"));
  CHECK(has(t, "siteprobe_maintenance_next_start_timestamp_seconds{window=\"vnpt-sunday\"} 1796569200"));

  m.tick(kSun2200);
  t = text(m);
  CHECK(has(
      t, "siteprobe_maintenance{reason=\"VNPT carrier maintenance\",site=\"d1\",window=\"vnpt-sunday\"} 1"));
  CHECK(has(
      t,
      "siteprobe_maintenance{reason=\"VNPT carrier maintenance\",site=\"d1.c1\",window=\"vnpt-sunday\"} 1"));
  CHECK(!has(t, "site=\"p\""));
  CHECK(has(t, "window=\"vnpt-sunday\"} 1\n"));

  m.configure(load(kInv));  // a reload in the middle of the window
  m.tick(kSun2200 + kHour);
  CHECK(has(text(m), "site=\"d1.c1\",window=\"vnpt-sunday\"} 1"));

  const std::int64_t thu2330 = kSun2200 + 4 * kDay + kHour + 30 * kMin;
  m.tick(thu2330);
  t = text(m);
  CHECK(!has(t, "site=\"d1\",window=\"vnpt-sunday\"}"));
  CHECK(has(t,
            "siteprobe_maintenance{device=\"vc\",reason=\"firmware "
            "\\\"push\\\"\",site=\"d1.c1\",window=\"firmware\"} 1"));
  CHECK(has(t, "siteprobe_maintenance{reason=\"firmware \\\"push\\\"\",site=\"d2\",window=\"firmware\"} 1"));

  m.tick(thu2330 + 2 * kHour);  // over, and a one-off has no next start
  t = text(m);
  CHECK(!has(t, "siteprobe_maintenance{"));
  CHECK(!has(t, "next_start_timestamp_seconds{window=\"firmware\"}"));

  const std::string list = Maintenance::list(*cfg, kSun2200 + kHour);
  INFO(list);
  CHECK(
      has(list,
          "On now (alerts muted):\n  vnpt-sunday: subtree d1 (2 sites); VNPT carrier maintenance [CHG-114]\n"
          "    muted until 2026-12-07 02:00 Asia/Ho_Chi_Minh\n"));
  CHECK(has(list,
            "  firmware: d2, d1.c1/vc (1 site, 1 device); firmware \"push\"\n"
            "    next 2026-12-10 23:00 to 2026-12-11 01:00 Asia/Ho_Chi_Minh\n"));
}
