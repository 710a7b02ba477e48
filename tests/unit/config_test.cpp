#include "inventory/config.h"

#include <dirent.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "probes/registry.h"

using namespace siteprobe;
using namespace std::chrono_literals;

namespace {

const Site& site(const Config& c, const std::string& id) {
  auto it = std::find_if(c.sites.begin(), c.sites.end(), [&](const Site& s) { return s.id == id; });
  REQUIRE(it != c.sites.end());
  return *it;
}

std::string joined(const std::vector<std::string>& v) {
  std::string o;
  for (const auto& s : v) o += s + "\n";
  return o;
}

}  // namespace

TEST_CASE("durations parse and print") {
  CHECK(parse_duration("250ms") == Duration(250ms));
  CHECK(parse_duration("10s") == Duration(10s));
  CHECK(parse_duration("1h30m") == Duration(90min));
  CHECK_FALSE(parse_duration(""));
  CHECK_FALSE(parse_duration("10"));
  CHECK_FALSE(parse_duration("10 s"));
  CHECK_FALSE(parse_duration("-1s"));
  CHECK_FALSE(parse_duration("1.5s"));
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(2min) == "2m");
}

TEST_CASE("the reference inventory loads with 1/8/108 sites") {
  auto r = probes::load_inventory(SITEPROBE_SOURCE_DIR "/config/bac-kan.yml");
  INFO(joined(r.errors));
  REQUIRE(r.config);
  const Config& c = *r.config;
  std::map<std::string, int> per_level;
  for (const auto& s : c.sites) per_level[s.level]++;
  CHECK(per_level["province"] == 1);
  CHECK(per_level["district"] == 8);
  CHECK(per_level["commune"] == 108);
  CHECK(summarize(c).rfind("117 sites (1 province, 8 district, 108 commune)", 0) == 0);
  // Vietnamese diacritics survive byte for byte.
  CHECK(site(c, "ba-be").name == "Huyện Ba Bể");
  // Every address is loopback: the demo and the tests must never probe anything else.
  for (const auto& s : c.sites)
    for (const auto& d : s.devices) CHECK(d.address.rfind("127.", 0) == 0);
}

TEST_CASE("defaults < role < profile < device, and the chain labels follow the levels") {
  const char* text = R"(
levels: [central, province, district, commune]
defaults:
  icmp: {interval: 20s, timeout: 1s, packets: 4}
roles:
  vc_endpoint:
    icmp: {packets: 10, spacing: 50ms}
profiles:
  satellite:
    icmp: {timeout: 3s}
sites:
  - {id: vn, name: Trung ương, level: central}
  - {id: bk, name: Bắc Kạn, level: province, parent: vn, lat: 22.1, lon: 105.8, labels: {zone: north}}
  - id: bb
    name: Ba Bể
    level: district
    parent: bk
  - id: nm
    name: Nam Mẫu
    level: commune
    parent: bb
    devices:
      - {name: r, address: 127.0.0.1, role: router}
      - {name: vc, address: "::1", role: vc_endpoint, profile: satellite, icmp: {packets: 2}}
      - {name: dns, address: localhost, role: router}
)";
  auto r = probes::parse_inventory(text, "t.yml");
  INFO(joined(r.errors));
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.chain_labels() == std::vector<std::string>{"central", "province", "district"});
  const Site& nm = site(c, "nm");
  CHECK(nm.chain == std::vector<std::string>{"vn", "bk", "bb", "nm"});
  CHECK(site(c, "bk").chain == std::vector<std::string>{"vn", "bk", "", ""});
  CHECK(site(c, "bk").labels.at("zone") == "north");
  REQUIRE(nm.devices.size() == 3);
  const auto& router = nm.devices[0].icmp;
  CHECK(router.interval == Duration(20s));
  CHECK(router.packets == 4);
  CHECK(router.spacing == Duration(200ms));  // built-in default
  const auto& vc = nm.devices[1].icmp;
  CHECK(vc.packets == 2);               // device beats role
  CHECK(vc.spacing == Duration(50ms));  // role
  CHECK(vc.timeout == Duration(3s));    // profile
  CHECK(vc.interval == Duration(20s));  // defaults
}

TEST_CASE("a two-level tree works without code changes") {
  auto r = probes::parse_inventory(R"(
levels: [province, commune]
sites:
  - {id: bk, name: Bắc Kạn, level: province}
  - {id: c1, name: Xã 1, level: commune, parent: bk, devices: [{name: r, address: 127.0.0.1, role: router}]}
)",
                                   "t.yml");
  INFO(joined(r.errors));
  REQUIRE(r.config);
  CHECK(r.config->chain_labels() == std::vector<std::string>{"province"});
  CHECK(site(*r.config, "c1").chain == std::vector<std::string>{"bk", "c1"});
}

TEST_CASE("secrets are read from files and never appear in errors") {
  const std::string dir = "/tmp/siteprobe-unit-secrets";
  REQUIRE(std::system(("mkdir -p " + dir).c_str()) == 0);
  std::ofstream(dir + "/community") << "s3cr3t-community\n";
  std::ofstream(dir + "/inv.yml") << R"(
auth:
  v2: {version: 2c, community_file: community}
  v3: {version: 3, username: noc, security_level: authNoPriv, auth_protocol: SHA-256, auth_passphrase: short}
sites:
  - {id: bk, name: Bắc Kạn, level: province}
)";
  auto r = probes::load_inventory(dir + "/inv.yml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0] ==
        dir + "/inv.yml:4:104: auth.v3.auth_passphrase: must be at least 8 characters (RFC 3414)");
  CHECK(r.errors[0].find("short") == std::string::npos);
}

// Table-driven: every file under tests/testdata/invalid/ starts with "# want: " lines giving the
// exact errors `siteprobe check` must print for it, in order.
TEST_CASE("every invalid inventory is rejected with exactly the expected messages") {
  const std::string rel = "tests/testdata/invalid";
  DIR* d = opendir((std::string(SITEPROBE_SOURCE_DIR) + "/" + rel).c_str());
  REQUIRE(d);
  std::vector<std::string> files;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".yml") files.push_back(n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 25);
  for (const auto& f : files) {
    const std::string path = rel + "/" + f;
    std::ifstream in(std::string(SITEPROBE_SOURCE_DIR) + "/" + path);
    std::string line;
    std::vector<std::string> want;
    while (std::getline(in, line) && line.rfind("# want: ", 0) == 0) want.push_back(line.substr(8));
    std::ifstream whole(std::string(SITEPROBE_SOURCE_DIR) + "/" + path);
    std::stringstream text;
    text << whole.rdbuf();
    auto r = probes::parse_inventory(text.str(), path, std::string(SITEPROBE_SOURCE_DIR) + "/" + rel);
    INFO(path);
    CHECK_FALSE(want.empty());
    CHECK_FALSE(r.config);
    CHECK(joined(r.errors) == joined(want));
  }
}

TEST_CASE("criticality: mcu and top-level routers critical by default; defaults < role < profile < device") {
  auto r = probes::parse_inventory(R"(
roles:
  vc_endpoint: {criticality: minor}
profiles:
  core: {criticality: critical}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r, address: 127.0.0.1, role: router}
      - {name: mcu, address: 127.0.0.2, role: mcu}
      - {name: sw, address: 127.0.0.3, role: switch}
      - {name: vc, address: 127.0.0.4, role: vc_endpoint}
  - id: d1
    name: Huyện Một
    level: district
    parent: bk
    devices:
      - {name: r, address: 127.0.1.1, role: router}
      - {name: r2, address: 127.0.1.2, role: router, profile: core}
      - {name: vc, address: 127.0.1.3, role: vc_endpoint, profile: core, criticality: major}
      - {name: mcu, address: 127.0.1.4, role: mcu, criticality: minor}
)",
                                   "t.yml");
  INFO(joined(r.errors));
  REQUIRE(r.config);
  const auto& bk = site(*r.config, "bk").devices;
  CHECK(bk[0].criticality == "critical");  // router of the top-level site
  CHECK(bk[1].criticality == "critical");  // mcu
  CHECK(bk[2].criticality == "major");     // anything else
  CHECK(bk[3].criticality == "minor");     // role
  const auto& d1 = site(*r.config, "d1").devices;
  CHECK(d1[0].criticality == "major");     // a district's router
  CHECK(d1[1].criticality == "critical");  // profile
  CHECK(d1[2].criticality == "major");     // device over profile over role
  CHECK(d1[3].criticality == "minor");     // device over the built-in default

  auto all = probes::parse_inventory(R"(
defaults: {criticality: minor}
sites:
  - {id: bk, name: B, level: province, devices: [{name: r, address: 127.0.0.1, role: router}, {name: m, address: 127.0.0.2, role: mcu}]}
)",
                                     "t.yml");
  INFO(joined(all.errors));
  REQUIRE(all.config);
  CHECK(all.config->sites[0].devices[0].criticality == "minor");  // defaults override the built-in ones
  CHECK(all.config->sites[0].devices[1].criticality == "minor");
}

TEST_CASE("vc_endpoint and mcu get SIP and H.323 by default; blocks layer and switch them off") {
  auto r = probes::parse_inventory(R"(
readiness: {min_mos: 3.8}
defaults:
  sip: {timeout: 1s}
  tcp: [{name: https, port: 443}]
roles:
  mcu:
    h323: {enabled: false}
profiles:
  tcp-sip:
    sip: {transport: tcp, port: 5061}
    tcp: []
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r, address: 127.0.0.1, role: router}
      - {name: vc, address: 127.0.0.2, role: vc_endpoint}
      - {name: mcu, address: 127.0.0.3, role: mcu, profile: tcp-sip}
      - {name: off, address: 127.0.0.4, role: vc_endpoint, sip: {enabled: false}, h323: {enabled: false}}
      - {name: gw, address: 127.0.0.5, role: router, sip: {enabled: true}, tcp: [{name: ssh, port: 22, timeout: 500ms}]}
)",
                                   "t.yml");
  INFO(joined(r.errors));
  REQUIRE(r.config);
  CHECK(r.config->readiness_min_mos == 3.8);
  const auto& d = r.config->sites[0].devices;
  const auto endpoint = [](const Device& x) { return !probes::call_services(x).empty(); };
  CHECK_FALSE(endpoint(d[0]));  // a router has no call service unless asked
  CHECK(d[0].tcp.size() == 1);  // but defaults.tcp applies to every device
  CHECK(d[1].sip.enabled);
  REQUIRE(d[1].blocks.count("h323"));
  CHECK(d[1].sip.timeout == Duration(1s));
  CHECK(d[1].sip.transport == "udp");
  CHECK(d[1].sip.port == 5060);
  CHECK(d[1].blocks.at("h323").integer("port") == 1720);
  CHECK(d[1].blocks.at("h323").duration("timeout") == Duration(2s));
  CHECK(d[2].sip.enabled);
  CHECK_FALSE(d[2].blocks.count("h323"));  // role
  CHECK(d[2].sip.transport == "tcp");
  CHECK(d[2].sip.port == 5061);
  CHECK(d[2].tcp.empty());  // the profile's empty list replaces the default one
  CHECK_FALSE(endpoint(d[3]));
  CHECK(endpoint(d[4]));
  REQUIRE(d[4].tcp.size() == 1);
  CHECK(d[4].tcp[0].name == "ssh");
  CHECK(d[4].tcp[0].timeout == Duration(500ms));
  CHECK(summarize(*r.config) ==
        "1 sites (1 province, 0 district, 0 commune), 5 devices, 15 probes (5 icmp, 0 snmp, 3 sip, 1 h323, 2 "
        "stamp, 4 tcp)");
}

TEST_CASE("a device address used twice is a warning naming the first, and the file still loads") {
  auto r = probes::parse_inventory(R"(sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: router, address: 127.0.0.1, role: router}
      - {name: codec, address: 127.0.0.2, role: vc_endpoint}
      - {name: mcu, address: 127.0.0.1, role: mcu}
)",
                                   "w.yml");
  REQUIRE(r.config);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] ==
        "w.yml:8:30: sites[0].devices[2].address: warning: address 127.0.0.1 is also device bk/router "
        "(w.yml:6:33); fine if both are the same box");
  auto ok = probes::load_inventory(SITEPROBE_SOURCE_DIR "/config/bac-kan.yml");
  CHECK(ok.warnings.empty());  // the reference inventory gives every device its own stand-in
}

TEST_CASE("inventories over the size limit are refused before they are parsed") {
  const std::string big(static_cast<std::size_t>(kMaxInventoryBytes) + 1, '#');
  auto r = probes::parse_inventory(big, "big.yml");
  CHECK_FALSE(r.config);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("at most") != std::string::npos);
}

// The inventory reads a probe type's own block only because the type's registry row declares it
// (BlockSchema): with another schema table, other keys are allowed, checked and layered.
TEST_CASE("a probe type's own block comes from its schema: keys, kinds, ranges, layering") {
  const std::vector<BlockSchema> schemas = {{"twamp",
                                             {"mcu"},
                                             {{"port", BlockKey::Kind::Int, "862", 1, 65535},
                                              {"rate", BlockKey::Kind::String, "2M", 0, 0, {"2M", "4M"}},
                                              {"interval", BlockKey::Kind::Time, "1m", 1000, 3600000},
                                              {"timeout", BlockKey::Kind::Time, "2s", 10, 60000}}}};
  const std::string inv = R"(
roles:
  vc_endpoint:
    twamp: {enabled: true, rate: 4M}
profiles:
  slow:
    twamp: {interval: 5m}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r, address: 127.0.0.1, role: router}
      - {name: vc, address: 127.0.0.2, role: vc_endpoint, profile: slow}
      - {name: mcu, address: 127.0.0.3, role: mcu, twamp: {port: 8620}}
)";
  auto r = parse_config(inv, schemas, "t.yml");
  INFO(joined(r.errors));
  REQUIRE(r.config);
  const auto& d = r.config->sites[0].devices;
  CHECK(d[0].blocks.empty());
  REQUIRE(d[1].blocks.count("twamp"));
  CHECK(d[1].blocks.at("twamp").text("rate") == "4M");
  CHECK(d[1].blocks.at("twamp").duration("interval") == Duration(5min));
  CHECK(d[1].blocks.at("twamp").integer("port") == 862);
  REQUIRE(d[2].blocks.count("twamp"));
  CHECK(d[2].blocks.at("twamp").integer("port") == 8620);
  CHECK(d[2].blocks.at("twamp").text("rate") == "2M");
  CHECK(summarize(*r.config).find("2 sip, 2 twamp, 0 tcp") != std::string::npos);

  // Without the schema, the same file is rejected at each use of the block.
  auto without = parse_config(inv, {}, "t.yml");
  CHECK_FALSE(without.config);
  CHECK(joined(without.errors).find("t.yml:4:5: roles.vc_endpoint.twamp: unknown key") != std::string::npos);
  CHECK(joined(without.errors).find("t.yml:15:52: sites[0].devices[2].twamp: unknown key") !=
        std::string::npos);

  auto bad = parse_config(R"(
defaults:
  twamp: {rate: 8M, port: 0, colour: red, timeout: 90s}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: mcu, address: 127.0.0.3, role: mcu, twamp: {interval: 1s, timeout: 5s}}
)",
                          schemas, "b.yml");
  CHECK_FALSE(bad.config);
  const auto all = joined(bad.errors);
  CHECK(all.find("b.yml:3:17: defaults.twamp.rate: unknown value \"8M\" (allowed: 2M, 4M)") !=
        std::string::npos);
  CHECK(all.find("defaults.twamp.port: out of range: 0 (allowed: 1..65535)") != std::string::npos);
  CHECK(all.find("defaults.twamp.colour: unknown key (allowed: enabled, port, rate, interval, timeout)") !=
        std::string::npos);
  CHECK(all.find("defaults.twamp.timeout: out of range: 90s") != std::string::npos);
  CHECK(all.find("sites[0].devices[0].twamp: twamp timeout 5s exceeds interval 1s") != std::string::npos);
}

TEST_CASE("the registry's blocks are what the inventory accepts: h323 is the tcp type's") {
  const auto& blocks = probes::inventory_blocks();
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0].name == "h323");
  CHECK(blocks[1].name == "stamp");  // the first type added through the registry (issue #13)
  auto r =
      probes::parse_inventory("defaults:\n  h323: {port: 1721}\n  tcp: [{name: h323, port: 1}]\n", "h.yml");
  CHECK(joined(r.errors).find(
            "invalid check name \"h323\" (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*, not sip, h323, stamp)") !=
        std::string::npos);
}

TEST_CASE("sites on identical coordinates are spread on the map; their coordinates stay") {
  std::vector<Site> v(5);
  for (auto& s : v) s.lat = 22.147, s.lon = 105.8348;
  v[3].lat = 22.5;  // elsewhere
  v[4].lat.reset(), v[4].lon.reset();
  spread_map_positions(v);
  // The first stays, the other two go round it at the same distance, apart from each other.
  CHECK(*v[0].map_lat == 22.147);
  CHECK(*v[0].map_lon == 105.8348);
  const double k = std::cos(22.147 * M_PI / 180);
  for (int i : {1, 2}) {
    CHECK(*v[i].lat == 22.147);  // the inventory's coordinates are untouched
    const double dy = *v[i].map_lat - 22.147, dx = (*v[i].map_lon - 105.8348) * k;
    CHECK(std::hypot(dx, dy) == Approx(kMapSpreadDegrees));
  }
  CHECK(std::hypot(*v[1].map_lat - *v[2].map_lat, (*v[1].map_lon - *v[2].map_lon) * k) > kMapSpreadDegrees);
  CHECK(*v[3].map_lat == 22.5);
  CHECK_FALSE(v[4].map_lat);
  // On the reference inventory's map no two sites share a point.
  auto r = probes::load_inventory(SITEPROBE_SOURCE_DIR "/config/bac-kan.yml");
  REQUIRE(r.config);
  std::set<std::pair<double, double>> seen_map;
  std::size_t with = 0;
  for (const auto& s : r.config->sites) {
    if (!s.lat) continue;
    ++with;
    seen_map.insert({*s.map_lat, *s.map_lon});
  }
  CHECK(seen_map.size() == with);
}
