// The conference calendar (daemon/conference.h) on an injected clock.
#include "daemon/conference.h"

#include <catch2/catch.hpp>

#include "probes/registry.h"

using namespace siteprobe;

namespace {

const char* kInv = R"(
sites:
  - {id: p, name: Tỉnh, level: province, devices: [{name: router, address: 127.0.0.1, role: router}]}
  - {id: d1, name: Huyện 1, level: district, parent: p, devices: [{name: router, address: 127.0.0.2, role: router}]}
  - {id: d1.c1, name: Xã 1, level: commune, parent: d1, devices: [{name: router, address: 127.0.0.3, role: router}]}
  - {id: d2, name: Huyện 2, level: district, parent: p, devices: [{name: router, address: 127.0.0.4, role: router}]}
  - {id: d2.c2, name: Xã 2, level: commune, parent: d2, devices: [{name: router, address: 127.0.0.5, role: router}]}
conferences:
  - {name: weekly, days: [mon], start: "08:00", duration: 2h, bitrate_kbps: 4000, participants: [{district: d1}]}
  - {name: night, dates: [2026-12-07], start: "23:30", time_zone: "+07:00", duration: 1h, participants: all,
     preflight: [10m]}
)";

// 2026-12-07 is a Monday; 08:00 in Asia/Ho_Chi_Minh (UTC+7) is 01:00 UTC.
constexpr std::int64_t kMon0800 = 1796605200;
constexpr std::int64_t kMin = 60, kDay = 86400;

std::shared_ptr<const Config> load(const std::string& text) {
  auto r = probes::parse_inventory(text, "cal.yml");
  INFO((r.errors.empty() ? "" : r.errors.front()));
  REQUIRE(r.config);
  return r.config;
}

}  // namespace

TEST_CASE("calendar: next occurrence, in the zone's local time, across midnight") {
  auto cfg = load(kInv);
  REQUIRE(cfg->conferences.size() == 2);
  const auto& weekly = cfg->conferences[0];
  CHECK(weekly.time_zone == "Asia/Ho_Chi_Minh");
  CHECK(weekly.utc_offset_seconds == 7 * 3600);
  CHECK(weekly.participants == std::vector<std::string>{"d1", "d1.c1"});
  auto o = Conferences::next(weekly, kMon0800 - 3600);
  REQUIRE(o);
  CHECK(o->start == kMon0800);
  CHECK(o->end == kMon0800 + 7200);
  o = Conferences::next(weekly, kMon0800 + 7199);  // still under way
  CHECK(o->start == kMon0800);
  o = Conferences::next(weekly, kMon0800 + 7200);  // over: next Monday
  CHECK(o->start == kMon0800 + 7 * kDay);
  // 23:30 to 00:30 local: at 00:10 local the next day it is still under way.
  const auto& night = cfg->conferences[1];
  const std::int64_t start = kMon0800 + (15 * 60 + 30) * kMin;  // 23:30 local the same day
  o = Conferences::next(night, start + 40 * kMin);
  REQUIRE(o);
  CHECK(o->start == start);
  CHECK_FALSE(Conferences::next(night, start + 3600));  // the only date is past
}

TEST_CASE("calendar: pre-flight marks fire once each, survive a reload, and verdicts follow path tests") {
  auto cfg = load(kInv);
  Conferences c;
  std::vector<std::pair<std::vector<std::string>, std::string>> asked;
  c.set_request([&](const std::vector<std::string>& keys, const std::string& why, double) {
    asked.emplace_back(keys, why);
  });
  c.configure(cfg);
  c.tick(kMon0800 - 61 * kMin, nullptr);
  CHECK(asked.empty());
  CHECK(c.boosted().empty());
  const auto gen0 = c.boost_generation();
  c.tick(kMon0800 - 60 * kMin, nullptr);  // T-60
  REQUIRE(asked.size() == 1);
  // From the first mark, the participants' checks run every 5 s (the default); others keep theirs.
  CHECK(c.boosted() == std::map<std::string, Duration>{{"d1/router", std::chrono::seconds(5)},
                                                       {"d1.c1/router", std::chrono::seconds(5)}});
  CHECK(c.boost_generation() == gen0 + 1);
  CHECK(asked[0].first == std::vector<std::string>{"d1/router", "d1.c1/router"});
  CHECK(asked[0].second == "preflight weekly T-60m");
  c.tick(kMon0800 - 59 * kMin, nullptr);
  CHECK(asked.size() == 1);
  auto v = c.verdicts("weekly");
  REQUIRE(v.size() == 2);
  CHECK(v[0].state == Conferences::Verdict::Pending);
  // Results come back: the commune's path is policed.
  probes::PathTestSummary ok, lossy;
  ok.verdict = probes::PathTestSummary::Verdict::Ok;
  ok.finished_unix = static_cast<double>(kMon0800 - 58 * kMin);
  lossy = ok;
  lossy.verdict = probes::PathTestSummary::Verdict::Loss;
  lossy.reason = "loss 31 % at 2 Mbit/s";
  c.on_path_test("d1/router", ok);
  c.on_path_test("d1.c1/router", lossy);
  c.tick(kMon0800 - 58 * kMin, nullptr);
  v = c.verdicts("weekly");
  CHECK(v[0].state == Conferences::Verdict::Ready);
  CHECK(v[1].state == Conferences::Verdict::NotReady);
  CHECK(v[1].reason == "path_loss");
  CHECK(v[1].detail == "router: loss 31 % at 2 Mbit/s");
  bool found = false, all = true;
  CHECK(c.report("weekly", found, all)
            .find("Xã 1 (d1.c1)  NOT READY  path_loss  router: loss 31 % at 2 Mbit/s") != std::string::npos);
  CHECK(found);
  CHECK_FALSE(all);
  std::string m;
  c.render(m);
  CHECK(
      m.find(
          "siteprobe_conference_participant_ready{conference=\"weekly\",district=\"d1\",site=\"d1.c1\"} 0") !=
      std::string::npos);
  CHECK(m.find("siteprobe_conference_preflight{conference=\"weekly\"} 1") != std::string::npos);
  // A reload in the middle of the pre-flight keeps what fired: T-60 is not asked again.
  c.configure(load(kInv));
  c.tick(kMon0800 - 57 * kMin, nullptr);
  CHECK(asked.size() == 1);
  CHECK(c.verdicts("weekly")[1].state == Conferences::Verdict::NotReady);
  c.tick(kMon0800 - 15 * kMin, nullptr);  // T-15
  c.tick(kMon0800 - 5 * kMin, nullptr);   // T-5
  CHECK(asked.size() == 3);
  CHECK(asked[2].second == "preflight weekly T-5m");
  // Results older than the pre-flight do not count for the next occurrence.
  const auto gen1 = c.boost_generation();
  CHECK(gen1 == gen0 + 1);           // unchanged through the pre-flight and a reload
  c.tick(kMon0800 + 7200, nullptr);  // over
  CHECK(c.verdicts("weekly").empty());
  CHECK(c.boosted().empty());
  CHECK(c.boost_generation() == gen1 + 1);
  c.tick(kMon0800 + 7 * kDay - 3600, nullptr);  // next Monday, T-60
  CHECK(asked.size() == 4);
  CHECK(c.verdicts("weekly")[1].state == Conferences::Verdict::Pending);
}

TEST_CASE("capped_interval: a pre-flight shortens an interval, never below the check's own duration") {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  CHECK(probes::capped_interval(seconds(10), seconds(2), Duration{0}) == seconds(10));  // no pre-flight
  CHECK(probes::capped_interval(seconds(10), seconds(2), seconds(5)) == seconds(5));
  CHECK(probes::capped_interval(seconds(10), seconds(2), seconds(1)) == seconds(2));        // the timeout
  CHECK(probes::capped_interval(seconds(3), milliseconds(300), seconds(5)) == seconds(3));  // already faster
}

TEST_CASE("calendar: a late start fires only the latest mark; bad calendars are rejected with line:col") {
  auto cfg = load(kInv);
  Conferences c;
  int asked = 0;
  std::string why;
  double bps = -1;
  c.set_request(
      [&](const std::vector<std::string>&, const std::string& w, double b) { ++asked, why = w, bps = b; });
  c.configure(cfg);
  c.tick(kMon0800 - 10 * kMin, nullptr);  // started 10 min before: T-60 and T-15 are past
  CHECK(asked == 1);
  CHECK(why == "preflight weekly T-15m");
  CHECK(bps == 4e6);  // the conference's bitrate, not the devices' 2 Mbit/s
  c.tick(kMon0800 + 16 * kMin * 60 - 10 * kMin, nullptr);  // 23:50 local, "night" under way: no bitrate
  CHECK(why == "preflight night T-10m");
  CHECK(bps == 0);
  auto r = probes::parse_inventory(R"(
sites:
  - {id: p, name: P, level: province, devices: [{name: r, address: 127.0.0.1, role: router}]}
conferences:
  - {name: a, days: [mon, funday], start: "25:00", duration: 1h, participants: [nowhere]}
  - {name: a, dates: [2026-13-01], start: "08:00", duration: 1h, participants: all, time_zone: America/New_York}
  - {name: b, days: [mon], start: "08:00", duration: 1h, participants: all, time_zone: Mars/Olympus}
)",
                                   "bad.yml");
  std::string all;
  for (const auto& e : r.errors) all += e + "\n";
  CHECK(all.find("bad.yml:5:27: conferences[0].days: unknown day \"funday\"") != std::string::npos);
  CHECK(all.find("bad.yml:5:43: conferences[0].start: \"25:00\" is not a time HH:MM") != std::string::npos);
  CHECK(all.find("conferences[0].participants[0]: unknown site \"nowhere\"") != std::string::npos);
  CHECK(all.find("conferences[1].name: duplicate conference name \"a\"") != std::string::npos);
  CHECK(all.find("\"2026-13-01\" is not a date YYYY-MM-DD") != std::string::npos);
  CHECK(all.find("\"America/New_York\": has daylight-saving rules") != std::string::npos);
  CHECK(all.find("\"Mars/Olympus\": unknown time zone") != std::string::npos);
  CHECK_FALSE(r.config);
}
