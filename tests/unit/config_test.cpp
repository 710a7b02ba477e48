#include "inventory/config.h"

#include <dirent.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

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
  auto r = load_config(SITEPROBE_SOURCE_DIR "/config/bac-kan.yml");
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
  auto r = parse_config(text, "t.yml");
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
  auto r = parse_config(R"(
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
  auto r = load_config(dir + "/inv.yml");
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
    auto r = parse_config(text.str(), path, std::string(SITEPROBE_SOURCE_DIR) + "/" + rel);
    INFO(path);
    CHECK_FALSE(want.empty());
    CHECK_FALSE(r.config);
    CHECK(joined(r.errors) == joined(want));
  }
}

TEST_CASE("criticality: mcu and top-level routers critical by default; defaults < role < profile < device") {
  auto r = parse_config(R"(
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

  auto all = parse_config(R"(
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
  auto r = parse_config(R"(
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
  CHECK_FALSE(d[0].endpoint());  // a router has no call service unless asked
  CHECK(d[0].tcp.size() == 1);   // but defaults.tcp applies to every device
  CHECK(d[1].sip.enabled);
  CHECK(d[1].h323.enabled);
  CHECK(d[1].sip.timeout == Duration(1s));
  CHECK(d[1].sip.transport == "udp");
  CHECK(d[1].sip.port == 5060);
  CHECK(d[1].h323.port == 1720);
  CHECK(d[2].sip.enabled);
  CHECK_FALSE(d[2].h323.enabled);  // role
  CHECK(d[2].sip.transport == "tcp");
  CHECK(d[2].sip.port == 5061);
  CHECK(d[2].tcp.empty());  // the profile's empty list replaces the default one
  CHECK_FALSE(d[3].endpoint());
  CHECK(d[4].endpoint());
  REQUIRE(d[4].tcp.size() == 1);
  CHECK(d[4].tcp[0].name == "ssh");
  CHECK(d[4].tcp[0].timeout == Duration(500ms));
  CHECK(summarize(*r.config) ==
        "1 sites (1 province, 0 district, 0 commune), 5 devices, 13 probes (5 icmp, 0 snmp, 3 sip, 1 h323, 4 "
        "tcp)");
}

TEST_CASE("a device address used twice is a warning naming the first, and the file still loads") {
  auto r = parse_config(R"(sites:
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
  auto ok = load_config(SITEPROBE_SOURCE_DIR "/config/bac-kan.yml");
  CHECK(ok.warnings.empty());  // the reference inventory gives every device its own stand-in
}

TEST_CASE("inventories over the size limit are refused before they are parsed") {
  const std::string big(static_cast<std::size_t>(kMaxInventoryBytes) + 1, '#');
  auto r = parse_config(big, "big.yml");
  CHECK_FALSE(r.config);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("at most") != std::string::npos);
}
