#include "daemon/site_state.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <vector>

#include "probes/registry.h"

using namespace siteprobe;

namespace {

// Province P, districts D1 and D2, communes C1 and C2 under D1 and C3 under D2. Each site has a
// router (decides reachability) and a video endpoint (does not).
struct Tree {
  std::shared_ptr<const Config> cfg;
  std::vector<std::tuple<std::string, SiteState, SiteState>> changes;
  SiteStates st{
      [this](const Site& s, SiteState from, SiteState to) { changes.emplace_back(s.id, from, to); }};

  explicit Tree(const std::string& extra = "") {
    std::string text = extra + "sites:\n";
    for (auto [id, level, parent] : {std::tuple{"P", "province", ""},
                                     {"D1", "district", "P"},
                                     {"D2", "district", "P"},
                                     {"C1", "commune", "D1"},
                                     {"C2", "commune", "D1"},
                                     {"C3", "commune", "D2"}}) {
      text += std::string("  - {id: ") + id + ", name: " + id + ", level: " + level;
      if (*parent) text += std::string(", parent: ") + parent;
      text +=
          ", devices: [{name: r, address: 127.0.0.1, role: router}, {name: vc, address: 127.0.0.2, role: "
          "vc_endpoint}]}\n";
    }
    auto r = probes::parse_inventory(text, "t.yml");
    REQUIRE(r.config);
    cfg = r.config;
    st.configure(cfg);
  }
  void round(const std::string& key, bool up, double rtt = 0.01, int attempted = 5, int received = -1) {
    st.on_round(key, {attempted, up ? (received < 0 ? attempted : received) : 0, rtt, 0.001});
  }
  // Every device answers except those listed, for `n` rounds, then the states are evaluated.
  void rounds(int n, const std::vector<std::string>& dead = {}) {
    for (int i = 0; i < n; ++i)
      for (const auto& s : cfg->sites)
        for (const auto& d : s.devices) {
          const std::string key = s.id + "/" + d.name;
          round(key, std::find(dead.begin(), dead.end(), key) == dead.end());
        }
    st.evaluate();
  }
  std::string text() {
    std::string out;
    st.render(out);
    return out;
  }
};

}  // namespace

TEST_CASE("the E-model maps RTT, jitter and loss to R and MOS as documented") {
  auto good = emodel(0.020, 0.002, 0);  // eff 34 ms: R = 93.2 - 0.85
  CHECK(good.r == Approx(92.35));
  CHECK(good.mos == Approx(4.4).epsilon(0.01));
  auto far = emodel(0.300, 0.010, 0);  // eff 330 ms: R = 93.2 - 21
  CHECK(far.r == Approx(72.2));
  auto lossy = emodel(0.020, 0.002, 0.04);  // 4 % loss costs 10 points
  CHECK(lossy.r == Approx(82.35));
  CHECK(emodel(2.0, 0.5, 1.0).mos == 1.0);  // clamped
  CHECK(emodel(0, 0, 0).mos <= 4.5);
}

TEST_CASE("sites start unknown and become up after their first good round") {
  Tree t;
  t.st.evaluate();
  CHECK(t.st.state("P") == SiteState::Unknown);
  t.rounds(1);
  for (const auto& s : t.cfg->sites) CHECK(t.st.state(s.id) == SiteState::Up);
  CHECK(t.st.vantage_up());
}

TEST_CASE("a dead district: the district is down, its communes unreachable, the rest untouched") {
  Tree t;
  t.rounds(3);
  t.changes.clear();
  const std::vector<std::string> dead = {"D1/r", "D1/vc", "C1/r", "C1/vc", "C2/r", "C2/vc"};
  t.rounds(1, dead);  // one failed round is not enough (down_after 2): only the window's loss shows
  CHECK(t.st.state("D1") == SiteState::Degraded);
  t.rounds(1, dead);
  CHECK(t.st.state("D1") == SiteState::Down);
  CHECK(t.st.state("C1") == SiteState::Unreachable);
  CHECK(t.st.state("C2") == SiteState::Unreachable);
  CHECK(t.st.state("D2") == SiteState::Up);
  CHECK(t.st.state("C3") == SiteState::Up);
  CHECK(t.changes.size() == 6);  // D1, C1, C2: up -> degraded -> down/unreachable
  const std::string text = t.text();
  CHECK(
      text.find("siteprobe_site_state{district=\"D1\",level=\"district\",province=\"P\",site=\"D1\"} 3\n") !=
      std::string::npos);
  CHECK(text.find("siteprobe_site_state{district=\"D1\",level=\"commune\",province=\"P\",site=\"C1\"} 4\n") !=
        std::string::npos);
  CHECK(text.find("siteprobe_site_status") == std::string::npos);  // one series per site (issue #12)
  // Back after up_after good rounds (degraded while the lost rounds are in the window).
  t.rounds(1);
  CHECK(t.st.state("D1") == SiteState::Down);
  t.rounds(1);
  CHECK(t.st.state("D1") == SiteState::Degraded);
  CHECK(t.st.state("C1") == SiteState::Degraded);
  t.rounds(10);
  CHECK(t.st.state("D1") == SiteState::Up);
}

TEST_CASE("a commune down alone is down; a dead video endpoint does not take its site down") {
  Tree t;
  t.rounds(2);
  t.rounds(2, {"C3/r", "C3/vc", "C2/vc"});
  CHECK(t.st.state("C3") == SiteState::Down);
  CHECK(t.st.state("C2") == SiteState::Up);
  CHECK(t.st.state("D2") == SiteState::Up);
}

TEST_CASE("a flapping router makes its site degraded, never down") {
  Tree t;
  t.rounds(2);
  for (int i = 0; i < 10; ++i)
    t.rounds(1, i % 2 ? std::vector<std::string>{"C1/r"} : std::vector<std::string>{});
  CHECK(t.st.state("C1") == SiteState::Degraded);
  CHECK(t.changes.size() == 7);  // each site's unknown -> up, then C1 up -> degraded once
}

TEST_CASE("degraded over the loss or RTT threshold of the window; 2 % loss stays up") {
  Tree t;
  for (int i = 0; i < 10; ++i) {
    for (const auto& s : t.cfg->sites)
      for (const auto& d : s.devices) t.round(s.id + "/" + d.name, true, 0.01, 50, i == 3 ? 49 : 50);
  }
  t.st.evaluate();
  CHECK(t.st.state("C1") == SiteState::Up);
  for (int i = 0; i < 10; ++i) t.round("C1/r", true, 0.01, 5, 4);  // 20 % loss
  for (int i = 0; i < 10; ++i) t.round("C2/r", true, 0.4);         // slow
  t.st.evaluate();
  CHECK(t.st.state("C1") == SiteState::Degraded);
  CHECK(t.st.state("C2") == SiteState::Degraded);
}

TEST_CASE("one lost packet alone never makes a site degraded; loss counts from 1/degraded_loss requests") {
  Tree t;
  for (const auto& s : t.cfg->sites)
    for (const auto& d : s.devices) t.round(s.id + "/" + d.name, true, 0.01, 5, s.id == "C1" ? 4 : 5);
  t.st.evaluate();
  CHECK(t.st.state("C1") == SiteState::Up);  // 1 of 5 lost: 20 %, but only 5 requests (< 1/0.1)
  t.round("C1/r", true, 0.01, 5, 4);
  t.st.evaluate();
  CHECK(t.st.state("C1") == SiteState::Degraded);  // 2 of 10 lost
  Tree z("site_state: {degraded_loss: 0}\n");
  z.round("C1/r", true, 0.01, 5, 4);
  z.st.evaluate();
  CHECK(z.st.state("C1") == SiteState::Degraded);  // 0 means any loss
}

TEST_CASE("the vantage is lost when every top-level site is down") {
  Tree t;
  t.rounds(2);
  std::vector<std::string> all;
  for (const auto& s : t.cfg->sites)
    for (const auto& d : s.devices) all.push_back(s.id + "/" + d.name);
  t.rounds(2, all);
  CHECK_FALSE(t.st.vantage_up());
  CHECK(t.st.state("P") == SiteState::Down);
  CHECK(t.st.state("D1") == SiteState::Unreachable);
  CHECK(t.text().find("siteprobe_vantage_up 0\n") != std::string::npos);
}

TEST_CASE("reachability roles and the per-device override are honoured") {
  Tree t("site_state: {reachability_roles: [vc_endpoint], down_after: 1}\n");
  t.rounds(1);
  t.rounds(1, {"C1/r"});
  CHECK(t.st.state("C1") == SiteState::Up);  // the router does not decide here
  t.rounds(1, {"C1/vc"});
  CHECK(t.st.state("C1") == SiteState::Down);
}

TEST_CASE("a reload keeps site states, damping and change counters of what stays") {
  Tree t;
  t.rounds(2);
  t.rounds(1, {"C1/r"});  // one failure counted, not yet down
  t.st.configure(t.cfg);  // the same inventory again
  CHECK(t.st.state("C1") == SiteState::Degraded);
  t.rounds(1, {"C1/r"});  // the second consecutive failure
  CHECK(t.st.state("C1") == SiteState::Down);
  CHECK(t.text().find("siteprobe_site_state_changes_total{district=\"D1\",level=\"commune\",province=\"P\","
                      "site=\"C1\"} 3\n") != std::string::npos);
  std::string q;
  t.st.quality()->render(q);
  CHECK(q.find("siteprobe_device_mos{device=\"vc\",district=\"D1\",level=\"commune\",province=\"P\",role="
               "\"vc_endpoint\",site=\"C1\"}") != std::string::npos);
}

TEST_CASE("a reload that shrinks the window keeps the newest rounds") {
  Tree t("site_state: {window: 10}\n");
  for (int i = 0; i < 8; ++i) t.round("C1/vc", true, 0.5);   // old rounds: a slow path
  for (int i = 0; i < 2; ++i) t.round("C1/vc", true, 0.01);  // the newest: a fast one
  Tree small("site_state: {window: 2}\n");
  t.st.configure(small.cfg);
  t.round("C1/vc", true, 0.01);  // the window is now the last old round and this one: both fast
  CHECK(t.st.device("C1/vc").mos == Approx(emodel(0.01, 0.001, 0).mos));
}

TEST_CASE("devices have dense slots in inventory order; rounds by slot are rounds by key") {
  Tree t;
  CHECK(t.st.slot("P/r") == 0);
  CHECK(t.st.slot("P/vc") == 1);
  CHECK(t.st.slot("C3/vc") == 11);
  CHECK(t.st.slot("C3/nope") == SiteStates::kNoSlot);
  t.st.on_round(SiteStates::kNoSlot, {5, 5, 0.01, 0.001});  // ignored
  t.st.on_round(12, {5, 5, 0.01, 0.001});                   // out of range: ignored
  for (std::uint32_t i = 0; i < 12; ++i) t.st.on_round(i, {5, 5, 0.01, 0.001});
  t.st.evaluate();
  for (const auto& s : t.cfg->sites) CHECK(t.st.state(s.id) == SiteState::Up);
  // A reload that adds a device before the others renumbers them and keeps what they know.
  std::string text =
      "sites:\n  - {id: P, name: P, level: province, devices: [{name: a, address: 127.0.0.3, role: router}, "
      "{name: r, address: 127.0.0.1, role: router}, {name: vc, address: 127.0.0.2, role: "
      "vc_endpoint}]}\n";
  auto r = probes::parse_inventory(text, "t.yml");
  REQUIRE(r.config);
  t.st.configure(r.config);
  CHECK(t.st.slot("P/a") == 0);
  CHECK(t.st.slot("P/r") == 1);
  CHECK(t.st.device("P/r").verdict == 1);
  t.st.on_round(1, {5, 0, 0, 0});
  t.st.on_round(1, {5, 0, 0, 0});
  CHECK(t.st.device("P/r").verdict == 0);
  CHECK(t.st.device("P/a").verdict == -1);
}

namespace {
// One province with two districts: D1 has one router, D2 has `n` routers.
std::shared_ptr<const Config> wide(int n) {
  std::string text =
      "sites:\n  - {id: P, name: P, level: province, devices: [{name: r, address: 127.0.0.1, role: "
      "router}]}\n"
      "  - {id: D1, name: D1, level: district, parent: P, devices: [{name: r, address: 127.0.0.1, role: "
      "router}]}\n  - {id: D2, name: D2, level: district, parent: P, devices: [";
  for (int i = 0; i < n; ++i)
    text +=
        std::string(i ? ", " : "") + "{name: r" + std::to_string(i) + ", address: 127.0.0.1, role: router}";
  text += "]}\n";
  auto r = probes::parse_inventory(text, "t.yml");
  REQUIRE(r.config);
  return r.config;
}

// Everything up, then one more round for D1's router only: the sites and devices evaluate() visits.
std::size_t visits_after_one_change(int n) {
  SiteStates st(nullptr);
  auto cfg = wide(n);
  st.configure(cfg);
  for (std::uint32_t i = 0; i < 2 + static_cast<std::uint32_t>(n); ++i) st.on_round(i, {5, 5, 0.01, 0.001});
  st.evaluate();
  CHECK(st.state("D2") == SiteState::Up);
  st.evaluate();
  CHECK(st.evaluate_visits() == 0);  // nothing changed since
  st.on_round("D1/r", {5, 0, 0, 0});
  st.on_round("D1/r", {5, 0, 0, 0});  // down (down_after 2)
  st.evaluate();
  CHECK(st.state("D1") == SiteState::Down);
  CHECK(st.state("D2") == SiteState::Up);
  return st.evaluate_visits();
}
}  // namespace

TEST_CASE("evaluate() visits only sites whose inputs changed, however many devices are unchanged") {
  const std::size_t few = visits_after_one_change(3);
  const std::size_t many = visits_after_one_change(3000);
  CHECK(few == 1);  // D1 (no children, its state changed but nothing hangs below it)
  CHECK(many == few);
}

TEST_CASE("a parent going down re-decides its children (down becomes unreachable) without their rounds") {
  Tree t;
  t.rounds(2);
  t.rounds(2, {"C1/r", "C1/vc"});
  CHECK(t.st.state("C1") == SiteState::Down);
  // Only D1's router fails now: C1's inputs do not change, but it is now behind a down parent.
  t.rounds(2, {"C1/r", "C1/vc", "D1/r"});
  CHECK(t.st.state("D1") == SiteState::Down);
  CHECK(t.st.state("C1") == SiteState::Unreachable);
  t.rounds(4, {"C1/r", "C1/vc"});  // D1's router answers again (past up_after)
  CHECK(t.st.state("D1") != SiteState::Down);
  CHECK(t.st.state("C1") == SiteState::Down);
}

TEST_CASE("each site says when its state last changed (down since), only once it has a state") {
  Tree t;
  t.st.evaluate();
  CHECK(t.text().find("siteprobe_site_state_change_timestamp_seconds{") == std::string::npos);
  const auto now = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  const double before = now();
  t.rounds(1);
  t.rounds(2, {"D1/r"});  // D1 down after down_after = 2 failed rounds
  const double after = now();
  REQUIRE(t.st.state("D1") == SiteState::Down);
  const std::string text = t.text();
  const std::string series =
      "siteprobe_site_state_change_timestamp_seconds{district=\"D1\",level=\"district\",province=\"P\",site="
      "\"D1\"} ";
  const auto at = text.find(series);
  REQUIRE(at != std::string::npos);
  const double v = std::stod(text.substr(at + series.size()));
  CHECK(v >= before);
  CHECK(v <= after);
  // A reload keeps it, as it keeps the state.
  t.st.configure(t.cfg);
  t.st.evaluate();
  CHECK(t.text().find(series + text.substr(at + series.size(), text.find('\n', at) - at - series.size())) !=
        std::string::npos);
}

namespace {

// Province P, districts A and B; commune C's primary uplink goes to A and its backup to P
// (a 4G link to the province). C's `wan-a` is its address on the primary link.
struct Redundant {
  std::shared_ptr<const Config> cfg;
  std::vector<std::pair<std::string, bool>> backup_events;
  SiteStates st{nullptr};
  explicit Redundant(const std::string& c_extra = "", const std::string& backups = "[P]") {
    const std::string text =
        "sites:\n"
        "  - {id: P, name: P, level: province, devices: [{name: r, address: 127.0.0.1, role: router}]}\n"
        "  - {id: A, name: A, level: district, parent: P, devices: [{name: r, address: 127.0.0.2, role: "
        "router}]}\n"
        "  - {id: B, name: B, level: district, parent: P, devices: [{name: r, address: 127.0.0.3, role: "
        "router}]}\n"
        "  - {id: C, name: C, level: commune, parent: A, backup_parents: " +
        backups + ", devices: [{name: r, address: 127.0.0.4, role: router}" + c_extra + "]}\n";
    auto r = probes::parse_inventory(text, "t.yml");
    INFO((r.errors.empty() ? "" : r.errors[0]));
    REQUIRE(r.config);
    cfg = r.config;
    st.on_backup_change([this](const Site& s, bool on) { backup_events.emplace_back(s.id, on); });
    st.configure(cfg);
  }
  void rounds(int n, const std::vector<std::string>& dead = {}) {
    for (int i = 0; i < n; ++i)
      for (const auto& s : cfg->sites)
        for (const auto& d : s.devices) {
          const std::string key = s.id + "/" + d.name;
          const bool up = std::find(dead.begin(), dead.end(), key) == dead.end();
          st.on_round(key, {5, up ? 5 : 0, 0.01, 0.001});
        }
    st.evaluate();
  }
  std::string text() {
    std::string out;
    st.render(out);
    return out;
  }
};

}  // namespace

TEST_CASE("a site with a backup parent is unreachable only when every parent is down") {
  Redundant t;
  t.rounds(2);
  CHECK(t.st.state("C") == SiteState::Up);
  CHECK_FALSE(t.st.on_backup_path("C"));
  INFO(t.text());
  CHECK(t.text().find(
            "siteprobe_site_on_backup_path{district=\"A\",level=\"commune\",province=\"P\",site=\"C\"} 0") !=
        std::string::npos);
  // The primary parent fails and C still answers: up, on its backup path.
  t.rounds(2, {"A/r"});
  CHECK(t.st.state("A") == SiteState::Down);
  CHECK(t.st.state("C") == SiteState::Up);
  CHECK(t.st.on_backup_path("C"));
  CHECK(t.text().find("site=\"C\"} 1") != std::string::npos);
  // C fails too, while its backup parent P is up: C is down (its own fault), not unreachable.
  t.rounds(2, {"A/r", "C/r"});
  CHECK(t.st.state("C") == SiteState::Down);
  CHECK_FALSE(t.st.on_backup_path("C"));
  // Both parents down: unreachable. (P down is the vantage lost, but the tree still decides.)
  t.rounds(2, {"P/r", "A/r", "C/r"});
  CHECK(t.st.state("A") == SiteState::Unreachable);
  CHECK(t.st.state("C") == SiteState::Unreachable);
  // Everything back: primary path again (degraded a while, from the loss still in the window).
  t.rounds(2);
  CHECK(t.st.state("C") == SiteState::Degraded);
  CHECK_FALSE(t.st.on_backup_path("C"));
  REQUIRE(t.backup_events.size() == 2);
  CHECK(t.backup_events[0] == std::pair<std::string, bool>{"C", true});
  CHECK(t.backup_events[1] == std::pair<std::string, bool>{"C", false});
}

TEST_CASE("a backup parent that is a district keeps its communes reachable across districts") {
  Redundant t("", "[B]");
  t.rounds(2);
  t.rounds(2, {"A/r", "B/r", "C/r"});
  CHECK(t.st.state("C") == SiteState::Unreachable);
  t.rounds(2, {"B/r", "C/r"});  // A back, B still down: C's primary parent is up, so C is down
  CHECK(t.st.state("C") == SiteState::Down);
  t.rounds(2, {"A/r", "C/r"});  // A down, B back
  CHECK(t.st.state("C") == SiteState::Down);
}

TEST_CASE("a failing primary-path device or SNMP uplink puts an answering site on its backup path") {
  Redundant t(", {name: wan-a, address: 127.0.0.5, role: other, path: primary}");
  REQUIRE(t.cfg->sites[3].devices[1].primary_path);
  t.rounds(2);
  CHECK_FALSE(t.st.on_backup_path("C"));
  t.rounds(2, {"C/wan-a"});  // the primary link is cut; C answers over 4G
  CHECK(t.st.state("C") == SiteState::Up);
  CHECK(t.st.on_backup_path("C"));
  t.rounds(2);
  CHECK_FALSE(t.st.on_backup_path("C"));
  // SNMP: the router's uplink interfaces (snmp.uplink names the primary's) are all down.
  probes::SnmpResult snmp;
  snmp.ok = true;
  snmp.uplinks = {{"ge-0/0/0", 2, 1, 1e9}};
  t.st.on_snmp("C/r", snmp);
  t.st.evaluate();
  CHECK(t.st.on_backup_path("C"));
  snmp.ok = false;  // an unanswered poll changes nothing
  t.st.on_snmp("C/r", snmp);
  t.st.evaluate();
  CHECK(t.st.on_backup_path("C"));
  snmp.ok = true;
  snmp.uplinks = {{"ge-0/0/0", 1, 1, 1e9}};
  t.st.on_snmp("C/r", snmp);
  t.st.evaluate();
  CHECK_FALSE(t.st.on_backup_path("C"));
  // A reload keeps the flag's inputs of devices still there.
  t.rounds(2, {"C/wan-a"});
  t.st.configure(t.cfg);
  CHECK(t.st.on_backup_path("C"));
}

TEST_CASE("backup_parents and path: primary are checked at their line and column") {
  const std::string head =
      "sites:\n"
      "  - {id: P, name: P, level: province}\n"
      "  - {id: A, name: A, level: district, parent: P}\n"
      "  - {id: B, name: B, level: district, parent: P}\n";
  auto errs = [&](const std::string& site) {
    auto r = probes::parse_inventory(head + site, "t.yml");
    CHECK_FALSE(r.config);
    std::string all;
    for (const auto& e : r.errors) all += e + "\n";
    return all;
  };
  CHECK(errs("  - {id: C, name: C, level: commune, parent: A, backup_parents: [A]}\n")
            .find("t.yml:5:66: sites[3].backup_parents[0]: \"A\" is already the primary parent") !=
        std::string::npos);
  CHECK(errs("  - {id: C, name: C, level: commune, parent: A, backup_parents: [X]}\n")
            .find("unknown backup parent \"X\"") != std::string::npos);
  CHECK(errs("  - {id: C, name: C, level: commune, parent: A, backup_parents: [B, B]}\n")
            .find("duplicate backup parent \"B\"") != std::string::npos);
  CHECK(errs("  - {id: C, name: C, level: commune, parent: A, backup_parents: B}\n"
             "  - {id: E, name: E, level: commune, parent: B, backup_parents: [C]}\n")
            .find("backup parent \"C\" is at level \"commune\", not above this site's \"commune\"") !=
        std::string::npos);
  CHECK(errs("  - {id: C, name: C, level: commune, parent: A, devices: [{name: w, address: 127.0.0.1, "
             "role: router, path: primary}]}\n")
            .find("path: primary marks the primary uplink of a site with backup_parents") !=
        std::string::npos);
  auto ok = probes::parse_inventory(
      head + "  - {id: C, name: C, level: commune, parent: A, backup_parents: B}\n", "t.yml");
  REQUIRE(ok.config);
  CHECK(ok.config->sites[3].backup_parents == std::vector<std::string>{"B"});
}

TEST_CASE("Newest keeps the newest values through pushes, a smaller and a larger cap") {
  Newest<int> w;
  const auto sorted = [&] {
    auto v = w.items;
    std::sort(v.begin(), v.end());
    return v;
  };
  for (int i = 1; i <= 7; ++i) w.push(i, 3);
  CHECK(sorted() == std::vector<int>{5, 6, 7});
  CHECK(w.items.capacity() == 3);
  w.push(8, 5);  // the cap grew while full and wrapped: nothing is lost, oldest go first later
  w.push(9, 5);
  CHECK(sorted() == std::vector<int>{5, 6, 7, 8, 9});
  w.push(10, 5);
  w.push(11, 5);
  CHECK(sorted() == std::vector<int>{7, 8, 9, 10, 11});
  w.shrink(2);
  CHECK(sorted() == std::vector<int>{10, 11});
  w.push(12, 2);
  CHECK(sorted() == std::vector<int>{11, 12});
  w.push(13, 1);  // a smaller cap on push alone keeps the newest too
  CHECK(sorted() == std::vector<int>{13});
  w.push(14, 0);
  CHECK(w.items.empty());
}
