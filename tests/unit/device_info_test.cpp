#include "daemon/device_info.h"

#include <catch2/catch.hpp>

#include "exposition_check.h"
#include "probes/registry.h"

using namespace siteprobe;

TEST_CASE("siteprobe_device_info is rendered at each scrape from the shared labels", "[metrics]") {
  const std::string text =
      "profiles:\n"
      "  vsat.1: {icmp: {timeout: 5s, interval: 30s}}\n"
      "sites:\n"
      "  - {id: P, name: Tỉnh, level: province, devices: [{name: r, address: 127.0.0.1, role: router}]}\n"
      "  - {id: B, name: Huyện B, level: district, parent: P}\n"
      "  - {id: D, name: Huyện, level: district, parent: P}\n"
      "  - {id: C, name: Xã, level: commune, parent: D, backup_parents: [B], devices: [\n"
      "      {name: r, address: 127.0.0.2, role: router, path: primary},\n"
      "      {name: vsat, address: 127.0.0.3, role: router, profile: vsat.1}]}\n";
  auto r = probes::parse_inventory(text, "t.yml");
  for (const auto& e : r.errors) FAIL_CHECK(e);
  REQUIRE(r.config);
  DeviceInfo info;
  std::string out;
  info.render(out);
  CHECK(out.empty());  // nothing applied yet

  auto v = std::make_shared<DeviceInfo::View>();
  v->config = r.config;
  for (const auto& s : r.config->sites)
    for (const auto& d : s.devices)
      v->devices.emplace_back(std::make_shared<const probes::DeviceLabels>(r.config->device_labels(s, d)),
                              &d);
  info.set(v);
  const auto parts = info.parts();  // a scrape's view: later sets do not change it
  info.set(nullptr);
  v.reset();
  r.config.reset();
  out.clear();
  for (auto p = parts; p(out);) {
  }
  INFO(out);
  CHECK(test::check_exposition(out).empty());
  CHECK(out.find("# HELP siteprobe_device_info ") == 0);
  CHECK(out.find("siteprobe_device_info{device=\"r\",district=\"\",level=\"province\",province=\"P\",role="
                 "\"router\",site=\"P\","
                 "address=\"127.0.0.1\",criticality=\"critical\"} 1\n") != std::string::npos);
  CHECK(out.find(",address=\"127.0.0.2\",criticality=\"major\",path=\"primary\"} 1\n") != std::string::npos);
  CHECK(out.find(",profile=\"vsat.1\"} 1\n") != std::string::npos);
  out.clear();
  info.render(out);
  CHECK(out.empty());
}
