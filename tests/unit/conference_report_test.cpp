// The after-conference quality report (daemon/conference_report.h) on an injected clock.
#include "daemon/conference_report.h"

#include <catch2/catch.hpp>

#include "probes/registry.h"

using namespace siteprobe;

namespace {

const char* kInv = R"(
sites:
  - {id: p, name: Tỉnh, level: province, devices: [{name: router, address: 127.0.0.1, role: router}]}
  - {id: d1, name: "Huyện, \"Một\"", level: district, parent: p, devices: [{name: router, address: 127.0.0.2, role: router}]}
  - {id: d1.c1, name: "=Xã 1", level: commune, parent: d1, devices: [{name: router, address: 127.0.0.3, role: router},
     {name: vc, address: 127.0.0.6, role: vc_endpoint}]}
  - {id: d2, name: Huyện 2, level: district, parent: p, devices: [{name: router, address: 127.0.0.4, role: router}]}
conferences:
  - {name: weekly, days: [mon], start: "08:00", duration: 2h, participants: [{district: d1}]}
)";

// 2026-12-07 is a Monday; 08:00 in Asia/Ho_Chi_Minh (UTC+7) is 01:00 UTC.
constexpr std::int64_t kMon0800 = 1796605200;

probes::RoundResult round(int attempted, int received, double rtt = 0.02, double jitter = 0.002) {
  probes::RoundResult r;
  r.attempted = attempted;
  r.received = received;
  r.rtt_mean = rtt;
  r.jitter = jitter;
  return r;
}

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("conference report: rounds, downtime and path tests of the participants during the window") {
  auto r = probes::parse_inventory(kInv, "cal.yml");
  REQUIRE(r.config);
  SiteStates st(nullptr);
  st.configure(r.config);
  ConferenceReports rep;
  rep.configure(r.config, st);
  int status = 0;
  CHECK(rep.report("weekly", "csv", status).find("none of its occurrences") != std::string::npos);
  CHECK(status == 404);

  rep.tick(kMon0800 - 60, st);  // before the start: nothing is counted
  rep.on_round(st.slot("d1/router"), round(10, 0));
  rep.tick(kMon0800, st);  // the window opens
  for (int i = 0; i < 10; ++i) {
    rep.on_round(st.slot("d1/router"), round(10, 10));
    rep.on_round(st.slot("d1.c1/router"), round(10, i < 2 ? 5 : 10));  // 10 % loss
    rep.on_round(st.slot("d2/router"), round(10, 0));                  // not a participant
  }
  auto stalled = round(10, 0);
  stalled.stalled = true;  // our own stall: not the path's loss
  rep.on_round(st.slot("d1.c1/router"), stalled);
  probes::PathTestSummary p;
  p.verdict = probes::PathTestSummary::Verdict::Loss;
  p.reason = "loss 31 % at 2 Mbit/s";
  rep.on_path_test("d1.c1/router", p);
  rep.on_site_change("d1.c1", SiteState::Down, kMon0800 + 600);
  rep.on_site_change("d1.c1", SiteState::Up, kMon0800 + 690);
  rep.on_site_change("d2", SiteState::Down, kMon0800 + 600);  // not a participant
  rep.on_site_change("d1", SiteState::Up, kMon0800 + 600);    // a first verdict: no change
  rep.tick(kMon0800 + 700, st);

  // Under way: served as it stands.
  std::string md = rep.report("weekly", "markdown", status);
  CHECK(status == 200);
  CHECK(has(md, "(under way: figures up to 2026-12-07 08:11 +07:00)"));

  rep.tick(kMon0800 + 7200, st);  // it ended
  const std::string csv = rep.report("weekly", "csv", status);
  INFO(csv);
  CHECK(status == 200);
  CHECK(has(csv,
            "conference,start,end,district,site,site_name,device,role,requests_sent,loss_percent,rtt_ms,ipdv_"
            "ms,mos,"
            "site_down_seconds,site_state_changes,path_test\r\n"));
  // Quoted, escaped, and a formula-looking name defused; 100 sent, none lost, 20 ms, 2 ms, no downtime.
  CHECK(
      has(csv,
          "weekly,2026-12-07 08:00 +07:00,2026-12-07 10:00 +07:00,d1,d1,\"Huyện, \"\"Một\"\"\",router,router,"
          "100,0.00,20.00,2.00,4.3"));
  CHECK(has(csv, ",d1,d1.c1,'=Xã 1,router,router,100,10.00,20.00,2.00,"));
  // Down 600..690; the first verdict (unknown to down) is no change, down to up is one.
  CHECK(has(csv, ",90,1,loss: loss 31 % at 2 Mbit/s\r\n"));
  CHECK(has(csv, ",d1,d1.c1,'=Xã 1,vc,vc_endpoint,0,,,,,90,1,\r\n"));  // no rounds: empty figures
  CHECK(!has(csv, "d2"));
  CHECK(has(csv, "router,router,100,0.00,20.00,2.00,4.39,0,0,\r\n"));  // d1: no change
  std::size_t lines = 0;
  for (char c : csv) lines += c == '\n';
  CHECK(lines == 4);  // header and three devices

  md = rep.report("weekly", "markdown", status);
  INFO(md);
  CHECK(
      has(md, "# Conference weekly: quality report\n\n2026-12-07 08:00 +07:00 to 2026-12-07 10:00 +07:00. "));
  CHECK(!has(md, "under way"));
  CHECK(has(md, "its site down): 2 of 3 devices; worst MOS "));
  CHECK(has(md, "| d1 | =Xã 1 (d1.c1) | router | 10.00 % | 20.00 ms | 2.00 ms |"));
  CHECK(has(md, "| 90 s | 1 | loss: loss 31 % at 2 Mbit/s | **poor**\n"));
  CHECK(rep.report("weekly", "pdf", status).find("csv or markdown") != std::string::npos);
  CHECK(status == 400);
  CHECK(rep.report("nope", "csv", status).size() > 0);
  CHECK(status == 404);

  // The next occurrence: a fresh window; the last report stays until it has figures.
  rep.tick(kMon0800 + 7 * std::int64_t{86400}, st);
  rep.on_round(st.slot("d1/router"), round(10, 5));
  rep.tick(kMon0800 + 7 * std::int64_t{86400} + 10, st);
  CHECK(has(rep.report("weekly", "csv", status), ",d1,d1,\"Huyện, \"\"Một\"\"\",router,router,10,50.00,"));
}

TEST_CASE("conference report: a reload during the window keeps the sums of the devices that stay") {
  auto r = probes::parse_inventory(kInv, "cal.yml");
  REQUIRE(r.config);
  SiteStates st(nullptr);
  st.configure(r.config);
  ConferenceReports rep;
  rep.configure(r.config, st);
  rep.tick(kMon0800 + 60, st);  // a late start: opens mid-window
  rep.on_round(st.slot("d1/router"), round(10, 9));
  std::string inv = kInv;
  inv.replace(inv.find("[{district: d1}]"), 16, "[d1, d2]");
  auto r2 = probes::parse_inventory(inv, "cal.yml");
  REQUIRE(r2.config);
  st.configure(r2.config);
  rep.configure(r2.config, st);
  rep.on_round(st.slot("d1/router"), round(10, 10));
  rep.on_round(st.slot("d2/router"), round(10, 10));
  rep.tick(kMon0800 + 7200, st);
  int status = 0;
  const std::string csv = rep.report("weekly", "csv", status);
  INFO(csv);
  CHECK(has(csv, ",d1,d1,\"Huyện, \"\"Một\"\"\",router,router,20,5.00,"));
  CHECK(has(csv, ",d2,d2,Huyện 2,router,router,10,0.00,"));
  CHECK(!has(csv, "d1.c1"));
}
