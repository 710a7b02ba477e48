// The status page's data (daemon/status.h): history ring, snapshot JSON, words in both languages.
#include "daemon/status.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/status_http.h"
#include "daemon/status_i18n.h"
#include "probes/registry.h"

using namespace siteprobe;

namespace {

probes::RoundResult round(int attempted, int received, double rtt_s = 0.01) {
  probes::RoundResult r;
  r.attempted = attempted;
  r.received = received;
  r.rtt_mean = rtt_s;
  r.jitter = 0.001;
  return r;
}

// Province P, district D, communes C1 and C2 under D; a router each, a vc_endpoint in C1.
struct World {
  std::shared_ptr<const Config> cfg;
  StatusBoard board;
  SiteStates st{
      [this](const Site& s, SiteState from, SiteState to) { board.on_site_change(s, from, to, now); }};
  Readiness rd;
  double now = 1'800'000'000;

  explicit World(std::int64_t watched_ns = StatusBoard::kWatchedNs,
                 std::size_t rows_always = StatusBoard::kRowsAlways)
      : board(watched_ns, rows_always) {
    const std::string text =
        "sites:\n"
        "  - {id: P, name: Tỉnh, level: province, lat: 22.1, lon: 105.8, devices: [{name: r, address: "
        "127.0.0.1, "
        "role: router}]}\n"
        "  - {id: D, name: Huyện \"Pác Nặm\", level: district, parent: P, lat: 22.6, lon: 105.6, devices: "
        "[{name: "
        "r, address: 127.0.0.2, role: router}]}\n"
        "  - {id: C1, name: Xã <Một>, level: commune, parent: D, devices: [{name: r, address: 127.0.0.3, "
        "role: "
        "router}, {name: vc, address: 127.0.0.4, role: vc_endpoint}]}\n"
        "  - {id: C2, name: Xã Hai, level: commune, parent: D, lat: 22.7, lon: 105.5, devices: [{name: r, "
        "address: "
        "127.0.0.5, role: router}]}\n";
    auto r = probes::parse_inventory(text, "t.yml");
    for (const auto& e : r.errors) FAIL_CHECK(e);
    REQUIRE(r.config);
    cfg = r.config;
    st.configure(cfg);
    rd.configure(cfg);
    board.configure(cfg, st);
  }
  void all(const std::string& key, const probes::RoundResult& r, int n = 3) {
    for (int i = 0; i < n; ++i) {
      st.on_round(key, r);
      board.on_round(st.slot(key), r, now);
    }
  }
  void tick() {
    st.evaluate();
    rd.evaluate(st);
    board.publish(st, rd, now);
    now += 1;
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("DeviceHistory keeps the last 60 minutes of loss and RTT", "[status]") {
  DeviceHistory h;
  std::array<std::uint16_t, DeviceHistory::kPoints> loss{};
  std::array<float, DeviceHistory::kPoints> rtt{};
  h.points(100, loss, rtt);
  for (auto l : loss) CHECK(l == DeviceHistory::kNoData);

  h.add(round(5, 5, 0.010), 100);
  h.add(round(5, 3, 0.020), 100);  // same minute: 2 of 10 lost, RTT weighted by replies
  h.add(round(5, 0), 101);
  h.add(round(5, 5, 0.030), 103);  // minute 102 has no rounds
  h.points(103, loss, rtt);
  CHECK(loss[56] == 2000);                                        // minute 100: 20.00 %
  CHECK(rtt[56] == Approx((5 * 10 + 3 * 20) / 8.0).margin(0.1));  // kept in tenths of a ms
  CHECK(loss[57] == 10000);
  CHECK(std::isnan(rtt[57]));
  CHECK(loss[58] == DeviceHistory::kNoData);
  CHECK(loss[59] == 0);  // the minute being filled
  CHECK(rtt[59] == Approx(30));

  probes::RoundResult stalled = round(5, 0);
  stalled.stalled = true;
  h.add(stalled, 103);  // neither loss nor down
  h.points(103, loss, rtt);
  CHECK(loss[59] == 0);
  h.add(round(1, 1, 9.0), 104);  // 9 s: shown as the most a point holds
  h.add(round(1, 1, 0.010), 105);
  h.points(105, loss, rtt);
  CHECK(rtt[58] == Approx(6553.4));
  CHECK(rtt[57] == Approx(30));

  // An hour later minute 100 has dropped out; a gap longer than the ring clears it all.
  h.add(round(4, 4), 160);
  h.points(160, loss, rtt);
  CHECK(loss[59] == 0);
  CHECK(loss[0] == 10000);  // minute 101, the oldest kept: minute 100 has dropped out
  CHECK(loss[2] == 0);      // minute 103
  h.add(round(4, 2), 400);
  h.points(400, loss, rtt);
  CHECK(loss[59] == 5000);
  for (std::size_t i = 0; i < 59; ++i) CHECK(loss[i] == DeviceHistory::kNoData);
  CHECK(sizeof(DeviceHistory) <= 400);  // RAM: ~4 MB at 10k devices (docs/dashboards.md)
}

TEST_CASE("StatusBoard snapshot: tree, states, counts, changes with reasons, devices", "[status]") {
  World w;
  w.tick();
  auto s = w.board.snapshot();
  CHECK(contains(s->tree, R"("levels":["province","district","commune"])"));
  CHECK(contains(s->tree,
                 R"({"id":"D","name":"Huyện \"Pác Nặm\"","level":"district","parent":"P","lat":22.6,)"));
  CHECK(contains(s->tree, R"("name":"Xã \u003cMột>")"));  // escaped for a <script>
  CHECK(contains(s->tree,
                 R"("id":"C1","name":"Xã \u003cMột>","level":"commune","parent":"D","lat":null,"lon":null)"));
  CHECK(contains(s->live, R"("states":[0,0,0,0])"));
  CHECK(contains(s->live, R"("counts":{"unknown":4,"up":0,"degraded":0,"down":0,"unreachable":0})"));

  for (auto k : {"P/r", "D/r", "C1/r", "C2/r", "C1/vc"}) w.all(k, round(5, 5));
  w.tick();
  s = w.board.snapshot();
  CHECK(contains(s->live, R"("states":[1,1,1,1])"));
  CHECK(contains(s->live, R"("to":"up","why":"why.started")"));

  // D goes down: its communes are unreachable ("parent down"); C2 is degraded by loss first.
  w.all("C2/r", round(10, 6));
  w.tick();
  s = w.board.snapshot();
  CHECK(contains(s->live,
                 R"("site":"C2","device":"","from":"up","to":"degraded","why":"why.loss","arg":"40 %")"));
  for (auto k : {"D/r", "C1/r", "C2/r"}) w.all(k, round(5, 0));
  w.tick();
  s = w.board.snapshot();
  CHECK(contains(s->live, R"("states":[1,3,4,4])"));
  CHECK(contains(s->live, R"("counts":{"unknown":0,"up":1,"degraded":0,"down":1,"unreachable":2})"));
  CHECK(contains(s->live, R"("changes":[{"t":)"));
  const auto d_down = s->live.find(R"("site":"D","device":"","from":"up","to":"down","why":"why.no_reply")");
  const auto c1_unr =
      s->live.find(R"("site":"C1","device":"","from":"up","to":"unreachable","why":"why.parent_down")");
  const auto c2_deg = s->live.find(R"("site":"C2","device":"","from":"up","to":"degraded")");
  REQUIRE(d_down != std::string::npos);
  REQUIRE(c1_unr != std::string::npos);
  CHECK(c1_unr < c2_deg);  // newest first

  // A call service answering 503 is a change of the device, with the answer as its reason.
  probes::CheckResult sip;
  sip.service = "sip";
  sip.up = false;
  sip.detail = "503";
  sip.call_service = true;
  w.board.on_check("C1/vc", sip, w.now);
  w.rd.on_check("C1/vc", sip);
  w.tick();
  s = w.board.snapshot();
  CHECK(contains(
      s->live,
      R"("site":"C1","device":"vc","from":"unknown","to":"down","why":"why.service_down","arg":"SIP 503")"));
  CHECK(contains(
      s->live,
      R"("readiness":{"total":1,"rows":[{"reason":"site_down","group":"D","group_name":"Huyện \"Pác Nặm\"","site":"C1")"));
  CHECK(contains(s->live, R"("reason":"site_down")"));

  const std::string c1 = StatusBoard::site_json(*s, "C1");
  CHECK(contains(
      c1,
      R"({"site":"C1","devices":[{"name":"r","role":"router","ready":"","verdict":0,"loss":100,"rtt":null,)"));
  CHECK(contains(c1, R"("name":"vc","role":"vc_endpoint")"));
  CHECK(contains(c1, R"("ready":"site_down")"));
  CHECK(contains(c1, R"("loss_hist":[null,)"));
  CHECK(contains(c1, ",50],\"rtt_hist\":["));
  CHECK(StatusBoard::site_json(*s, "nope").empty());

  // A snapshot already handed out does not change.
  const auto old = s;
  w.all("D/r", round(5, 5), 3);
  w.tick();
  CHECK(contains(old->live, R"("states":[1,3,4,4])"));
  CHECK(!contains(w.board.snapshot()->live, R"("states":[1,3,4,4])"));

  // A reload keeps the history.
  w.st.configure(w.cfg);
  w.board.configure(w.cfg, w.st);
  w.tick();
  CHECK(contains(StatusBoard::site_json(*w.board.snapshot(), "C1"), ",50],\"rtt_hist\":["));
  CHECK(contains(w.board.snapshot()->tree, R"({"gen":2,)"));
}

TEST_CASE("StatusBoard holds a large inventory's device rows only while the page is watched", "[status]") {
  World w(std::int64_t{20'000'000}, 4);  // watched for 20 ms after a read; 5 devices is large
  auto rows_of = [&](const char* site) { return StatusBoard::site_json(*w.board.snapshot(), site); };
  w.board.publish(w.st, w.rd, w.now);  // the first publish after configure, nobody reading
  CHECK(rows_of("C1") == R"({"site":"C1","pending":true,"devices":[]})");
  w.tick();  // read just now: the rows are built
  CHECK(contains(rows_of("C1"), R"({"site":"C1","devices":[{"name":"r",)"));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  w.tick();  // unread for 40 ms: dropped
  CHECK(contains(rows_of("C1"), R"("pending":true)"));
  CHECK(contains(w.board.snapshot()->tree, R"("id":"C1")"));  // the rest of the snapshot stays
  w.tick();  // read again: back, with the history kept meanwhile
  CHECK(contains(rows_of("C1"), R"({"site":"C1","devices":[{"name":"r",)"));
  CHECK(rows_of("nope").empty());

  World small(std::int64_t{20'000'000}, 5);  // small: the rows stay, unwatched too
  small.board.publish(small.st, small.rd, small.now);
  CHECK(contains(StatusBoard::site_json(*small.board.snapshot(), "C1"),
                 R"({"site":"C1","devices":[{"name":"r",)"));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  small.board.publish(small.st, small.rd, small.now);
  CHECK(contains(StatusBoard::site_json(*small.board.snapshot(), "C1"),
                 R"({"site":"C1","devices":[{"name":"r",)"));
}

TEST_CASE("StatusBoard site view: SNMP uplinks, their changes, and a silent agent", "[status]") {
  World w;
  w.tick();
  CHECK(!contains(StatusBoard::site_json(*w.board.snapshot(), "D"), "\"snmp\""));  // never polled
  probes::SnmpResult r{true, "", {{"ge-0/0/1", 1, 1, 1e9}, {"Tuyến \"Bắc\"", 1, 1, 1e8}}};
  w.board.on_snmp("D/r", r, w.now);
  w.tick();
  CHECK(contains(StatusBoard::site_json(*w.board.snapshot(), "D"),
                 R"("snmp":{"error":"","uplinks":[{"name":"ge-0/0/1","oper":1,"admin":1,"speed":1000000000},)"
                 R"({"name":"Tuyến \"Bắc\"","oper":1,"admin":1,"speed":100000000}]})"));
  CHECK(!contains(w.board.snapshot()->live, "why.uplink"));  // the first answer is no change

  r.uplinks[0].oper = 2;
  w.board.on_snmp("D/r", r, w.now);
  w.tick();
  CHECK(contains(w.board.snapshot()->live, R"("why":"why.uplink_down","arg":"ge-0/0/1")"));
  CHECK(!contains(w.board.snapshot()->live, R"("arg":"Tuyến)"));  // unchanged

  // The agent stops answering: the error shows, with the uplinks as last seen.
  w.board.on_snmp("D/r", {false, "timeout", {}}, w.now);
  w.tick();
  const std::string d = StatusBoard::site_json(*w.board.snapshot(), "D");
  CHECK(contains(d, R"("snmp":{"error":"timeout","uplinks":[{"name":"ge-0/0/1","oper":2,)"));

  r.uplinks[0].oper = 1;  // back, and up again
  w.board.on_snmp("D/r", r, w.now);
  w.tick();
  CHECK(contains(w.board.snapshot()->live, R"("why":"why.uplink_up","arg":"ge-0/0/1")"));
  CHECK(contains(StatusBoard::site_json(*w.board.snapshot(), "D"), R"("snmp":{"error":"","uplinks":[)"));
  w.board.on_snmp("nope/r", r, w.now);  // an unknown key is ignored
}

TEST_CASE("Every word of the status page exists in Vietnamese and English", "[status][i18n]") {
  std::set<std::string> keys;
  for (const auto& e : i18n::table()) {
    INFO(e.key);
    CHECK(keys.insert(e.key).second);  // no duplicates
    CHECK(std::string(e.en).size() > 0);
    CHECK(std::string(e.vi).size() > 0);
  }
  // The keys the page uses literally: t("key") and data-i18n="key".
  const std::string page = read(std::string(SITEPROBE_SOURCE_DIR) + "/daemon/status_page.html");
  REQUIRE(page.size() > 1000);
  std::size_t used = 0;
  for (const std::string open : {"t(\"", "data-i18n=\""})
    for (auto p = page.find(open); p != std::string::npos; p = page.find(open, p + 1)) {
      if (open[0] == 't' && p > 0 &&
          (std::isalnum(static_cast<unsigned char>(page[p - 1])) || page[p - 1] == '_'))
        continue;  // another function's name ending in t
      const auto b = p + open.size(), e = page.find('"', b);
      const std::string key = page.substr(b, e - b);
      if (key.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.") != std::string::npos ||
          (open[0] == 't' && page.compare(e, 2, "\")") != 0))
        continue;  // not a literal key (t("state." + s) is checked below)
      INFO(key);
      CHECK(keys.count(key));
      ++used;
    }
  CHECK(used > 30);
  // The keys it builds: state., dev., reason., why., level. of the reference levels.
  for (int s = 0; s < 5; ++s) CHECK(keys.count(std::string("state.") + to_string(static_cast<SiteState>(s))));
  for (auto d : {"up", "down", "unknown"}) CHECK(keys.count(std::string("dev.") + d));
  for (auto r : {Readiness::Ready, Readiness::Unknown, Readiness::SiteDown, Readiness::DeviceDown,
                 Readiness::CallServiceDown, Readiness::LowMos})
    CHECK(keys.count(std::string("reason.") + Readiness::name(r)));
  for (auto w : {"parent_down", "no_reply", "loss", "rtt", "recovered", "started", "service_down",
                 "service_up", "uplink_down", "uplink_up"})
    CHECK(keys.count(std::string("why.") + w));
  for (auto l : {"province", "district", "commune"}) CHECK(keys.count(std::string("level.") + l));
}

TEST_CASE("Language choice: ?lang, Accept-Language, the page", "[status][i18n]") {
  CHECK(i18n::pick_lang("vi-VN,vi;q=0.9,en;q=0.8") == i18n::Lang::Vi);
  CHECK(i18n::pick_lang("en-US,en;q=0.9,vi;q=0.8") == i18n::Lang::En);
  CHECK(i18n::pick_lang("fr-FR, vi;q=0.5, en;q=0.4") == i18n::Lang::Vi);
  CHECK(i18n::pick_lang("") == i18n::Lang::En);
  CHECK(i18n::pick_lang("de") == i18n::Lang::En);
  CHECK(i18n::parse_lang("VI") == i18n::Lang::Vi);
  CHECK(!i18n::parse_lang("vie"));
  CHECK(std::string(i18n::tr(i18n::Lang::Vi, "state.down")) == "mất kết nối");
  const std::string vi = status_page(i18n::Lang::Vi), en = status_page(i18n::Lang::En);
  CHECK(contains(vi, "<html lang=\"vi\">"));
  CHECK(contains(en, "<html lang=\"en\">"));
  CHECK(!contains(vi, "%%"));
  CHECK(contains(vi, "\"connection lost since\""));
  CHECK(contains(vi, "\"mất kết nối từ\""));
  CHECK(vi.size() < std::size_t{300} * 1024);  // the page weight budget
  CHECK(!contains(vi, "http://"));
  CHECK(!contains(vi, "https://"));
}

TEST_CASE("The readiness report in Vietnamese and English", "[status][i18n]") {
  World w;
  for (auto k : {"P/r", "D/r", "C1/r", "C2/r"}) w.all(k, round(5, 5));
  w.all("D/r", round(5, 0));
  w.all("C1/r", round(5, 0));
  w.tick();
  bool all = true;
  const std::string en = w.rd.report(all, i18n::Lang::En), vi = w.rd.report(all, i18n::Lang::Vi);
  CHECK(!all);
  INFO(en);
  CHECK(contains(en, "1 of 1 endpoints NOT READY (min MOS 3.6)"));
  CHECK(contains(en, "Huyện \"Pác Nặm\" (D): 1 not ready\n  SITE"));
  CHECK(contains(en, "site down"));
  CHECK(contains(vi, "1 trên 1 thiết bị đầu cuối CHƯA SẴN SÀNG (MOS tối thiểu 3.6)"));
  CHECK(contains(vi, "(D): 1 chưa sẵn sàng\n  Điểm"));
  CHECK(contains(vi, "điểm mất kết nối"));
}
