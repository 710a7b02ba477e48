// describe_changes(): what the "inventory reloaded" log line says changed.
#include <catch2/catch.hpp>

#include "daemon/daemon.h"
#include "inventory/config.h"
#include "probes/registry.h"

using namespace siteprobe;

namespace {

Config parse(const std::string& text) {
  auto r = probes::parse_inventory(text, "test.yml");
  INFO((r.errors.empty() ? "" : r.errors[0]));
  REQUIRE(r.config);
  return *r.config;
}

const char* const kBefore = R"(
auth:
  ro: {version: 2c, community: public}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r1, address: 127.0.0.1, role: router, snmp: {auth: ro}}
      - {name: r2, address: 127.0.0.2, role: router}
  - id: bb
    name: Ba Bể
    level: district
    parent: bk
    devices:
      - {name: r1, address: 127.0.1.1, role: router}
)";

}  // namespace

TEST_CASE("a reload that changes nothing says so") {
  CHECK(describe_changes(parse(kBefore), parse(kBefore)) == "no site or device changed");
}

TEST_CASE("a reload names the sites and devices added, removed and changed") {
  const std::string after = R"(
auth:
  ro: {version: 2c, community: public}
sites:
  - id: bk
    name: Tỉnh Bắc Kạn
    level: province
    devices:
      - {name: r1, address: 127.0.0.1, role: router, snmp: {auth: ro}}
      - {name: r3, address: 127.0.0.3, role: router}
  - id: nr
    name: Na Rì
    level: district
    parent: bk
    devices:
      - {name: r1, address: 127.0.2.1, role: router, icmp: {packets: 3}}
)";
  CHECK(describe_changes(parse(kBefore), parse(after)) ==
        "sites added 1 (nr); sites removed 1 (bb); sites changed 1 (bk); "
        "devices added 2 (bk/r3, nr/r1); devices removed 2 (bb/r1, bk/r2)");
}

TEST_CASE("a device changes with any effective setting, or with its SNMP credentials") {
  std::string after = kBefore;
  after.replace(after.find("127.0.1.1"), 9, "127.0.1.9");
  CHECK(describe_changes(parse(kBefore), parse(after)) == "devices changed 1 (bb/r1)");
  after = kBefore;
  after.replace(after.find("community: public"), 17, "community: secret");
  CHECK(describe_changes(parse(kBefore), parse(after)) == "devices changed 1 (bk/r1)");
  after = std::string("defaults:\n  icmp: {interval: 30s}\n") + kBefore;
  CHECK(describe_changes(parse(kBefore), parse(after)) == "devices changed 3 (bb/r1, bk/r1, bk/r2)");
  // criticality is an effective setting too: bb/r1 was major (a district's router), now critical
  after = kBefore;
  after.replace(after.find("role: router", after.find("127.0.1.1")), 12,
                "role: router, criticality: critical");
  CHECK(describe_changes(parse(kBefore), parse(after)) == "devices changed 1 (bb/r1)");
}

TEST_CASE("a long list is cut after ten names") {
  std::string after = kBefore;
  for (int i = 0; i < 12; ++i)
    after += "      - {name: n" + std::string(i < 10 ? "0" : "") + std::to_string(i) + ", address: 127.0.3." +
             std::to_string(i + 1) + ", role: router}\n";
  CHECK(describe_changes(parse(kBefore), parse(after)) ==
        "devices added 12 (bb/n00, bb/n01, bb/n02, bb/n03, bb/n04, bb/n05, bb/n06, bb/n07, bb/n08, bb/n09, "
        "...)");
}
