#include "probes/snmp.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "inventory/config.h"
#include "probes/registry.h"
#include "probes/snmp_exposition.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

SnmpVal num(SnmpVal::T t, std::uint64_t v) {
  SnmpVal x;
  x.type = t;
  x.u = v;
  x.i = static_cast<std::int64_t>(v);
  return x;
}
SnmpVal str(const std::string& s) {
  SnmpVal x;
  x.type = SnmpVal::T::String;
  x.s = s;
  return x;
}
Oid oid(std::initializer_list<std::uint32_t> o) {
  return Oid(o);
}

const Oid kIfX = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1};
const Oid kIf = {1, 3, 6, 1, 2, 1, 2, 2, 1};
Oid col(const Oid& t, std::uint32_t c) {
  Oid o = t;
  o.push_back(c);
  return o;
}

SnmpText render(const SnmpDeviceState& s) {
  SnmpText out;
  s.render("site=\"a\"", out);
  return out;
}

// The value of the one line of `family` containing `needle`.
double value(const SnmpText& out, const std::string& family, const std::string& needle) {
  auto it = out.find(family);
  REQUIRE(it != out.end());
  std::istringstream in(it->second);
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) return std::stod(line.substr(line.rfind(' ') + 1));
  FAIL("no line with " << needle << " in " << family);
  return 0;
}

}  // namespace

TEST_CASE("WrapCounter adds modular differences across 32-bit wraps", "[snmp]") {
  WrapCounter c;
  c.update(4000000000u, false);
  CHECK(c.total == 4000000000u);
  c.update(100, false);  // wrapped: 4294967296 - 4000000000 + 100
  CHECK(c.total == 4000000000ull + 294967396ull);
  c.update(200, false);
  CHECK(c.total == 4294967496ull);
}

TEST_CASE("WrapCounter treats a reboot or an impossible jump as a reset", "[snmp]") {
  WrapCounter c;
  c.update(1000, false);
  c.update(50, true);  // agent restarted: counted from 0
  CHECK(c.total == 1050);
  // A drop from 5000 to 10 would be a wrap of ~4.29e9 bytes; a link that can carry at most 1e6
  // since the last poll cannot have done that, so it is a reset.
  c.update(5000, false);
  const auto before = c.total;
  c.update(10, false, 1e6);
  CHECK(c.total == before + 10);
  // The same drop on a link fast enough for it is a wrap.
  c.update(5, false, 1e10);
  CHECK(c.total == before + 10 + (4294967296ull - 5));
}

TEST_CASE("sysUpTime going backwards is a reboot unless the 32-bit tick counter wrapped", "[snmp]") {
  CHECK_FALSE(uptime_rebooted(1000, 2000, 10));
  CHECK(uptime_rebooted(100000, 500, 60));
  // 497 days in: prev near 2^32, 60 s later the counter wrapped to ~6000 - 1000.
  CHECK_FALSE(uptime_rebooted(4294967296u - 1000u, 5000, 60));
  // Near 2^32 but the new value is far from where a wrap would land: a reboot.
  CHECK(uptime_rebooted(4294967296u - 1000u, 3000000, 60));
}

TEST_CASE("sanitize_utf8 keeps valid UTF-8 and replaces what Prometheus would reject", "[snmp]") {
  CHECK(sanitize_utf8("Đường lên Bắc Kạn") == "Đường lên Bắc Kạn");
  CHECK(sanitize_utf8(std::string("ab\xff"
                                  "c")) ==
        "ab\xEF\xBF\xBD"
        "c");
  CHECK(sanitize_utf8(std::string("\xC0\xAF")) == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  CHECK(sanitize_utf8(std::string("\xED\xA0\x80")) == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(sanitize_utf8(std::string("eth0\0\0", 6)) == "eth0");
  CHECK(sanitize_utf8("tab\there") == "tab here");
  CHECK(sanitize_utf8(std::string("\xE2\x82")) == "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated sequence
}

TEST_CASE("Varbinds become interface rows with filters, uplink and counters", "[snmp]") {
  PollData d;
  d.scalars[oid({1, 3, 6, 1, 2, 1, 1, 3, 0})] = num(SnmpVal::T::Ticks, 5000);
  d.scalars[oid({1, 3, 6, 1, 2, 1, 1, 5, 0})] = str("router-1");
  for (std::uint32_t i : {1u, 2u, 3u}) {
    const std::string name = i == 1 ? "Gi0/0" : i == 2 ? "Gi0/1" : "Null0";
    d.columns[col(kIfX, 1)][{i}] = str(name);
    d.columns[col(kIfX, 18)][{i}] = str(i == 1 ? "Uplink to Chợ Đồn" : "");
    d.columns[col(kIfX, 6)][{i}] = num(SnmpVal::T::Counter64, 10000000000ull * i);
    d.columns[col(kIfX, 15)][{i}] = num(SnmpVal::T::Unsigned, 1000);
    d.columns[col(kIf, 8)][{i}] = num(SnmpVal::T::Int, i == 2 ? 2 : 1);
    d.columns[col(kIf, 7)][{i}] = num(SnmpVal::T::Int, 1);
    d.columns[col(kIf, 14)][{i}] = num(SnmpVal::T::Counter32, 7);
  }
  SnmpDeviceState::Settings s({}, {"Null.*"}, "Gi0/0");
  SnmpDeviceState st;
  st.apply(d, s, 100.0);
  st.poll_done(true, 0.05, 10);
  auto out = render(st);
  CHECK(out["siteprobe_snmp_interface_oper_status"].find("Null0") == std::string::npos);
  CHECK(value(out, "siteprobe_snmp_interface_oper_status", "if_name=\"Gi0/1\"") == 2);
  CHECK(value(out, "siteprobe_snmp_interface_uplink", "if_name=\"Gi0/0\"") == 1);
  CHECK(value(out, "siteprobe_snmp_interface_uplink", "if_name=\"Gi0/1\"") == 0);
  CHECK(value(out, "siteprobe_snmp_interface_received_bytes_total", "if_name=\"Gi0/1\"") == 20000000000.0);
  CHECK(value(out, "siteprobe_snmp_interface_speed_bytes_per_second", "if_name=\"Gi0/0\"") == 1e9 / 8);
  CHECK(value(out, "siteprobe_snmp_interface_high_capacity", "if_name=\"Gi0/0\"") == 1);
  CHECK(value(out, "siteprobe_snmp_interface_receive_errors_total", "if_name=\"Gi0/0\"") == 7);
  CHECK(out["siteprobe_snmp_interface_oper_status"].find("if_alias=\"Uplink to Chợ Đồn\"") !=
        std::string::npos);
  CHECK(value(out, "siteprobe_snmp_uptime_seconds", "site") == 50);
  CHECK(value(out, "siteprobe_snmp_up", "site") == 1);
  CHECK(out["siteprobe_snmp_device_info"].find("sys_name=\"router-1\"") != std::string::npos);

  // Second poll: the agent restarted (uptime fell); errors counter restarted from 0.
  d.scalars[oid({1, 3, 6, 1, 2, 1, 1, 3, 0})] = num(SnmpVal::T::Ticks, 300);
  for (std::uint32_t i : {1u, 2u, 3u}) d.columns[col(kIf, 14)][{i}] = num(SnmpVal::T::Counter32, 2);
  st.apply(d, s, 160.0);
  out = render(st);
  CHECK(st.reboots() == 1);
  CHECK(value(out, "siteprobe_snmp_device_reboots_total", "site") == 1);
  CHECK(value(out, "siteprobe_snmp_interface_receive_errors_total", "if_name=\"Gi0/0\"") == 9);
}

TEST_CASE("32-bit interface counters are used where HC counters are missing", "[snmp]") {
  PollData d;
  d.columns[col(kIf, 2)][{5}] = str("eth5");
  d.columns[col(kIf, 8)][{5}] = num(SnmpVal::T::Int, 1);
  d.columns[col(kIf, 5)][{5}] = num(SnmpVal::T::Unsigned, 0);  // speed unknown
  d.columns[col(kIf, 10)][{5}] = num(SnmpVal::T::Counter32, 4294000000u);
  SnmpDeviceState st;
  st.apply(d, {}, 10);
  d.columns[col(kIf, 10)][{5}] = num(SnmpVal::T::Counter32, 1000000u);
  st.apply(d, {}, 70);
  auto out = render(st);
  CHECK(value(out, "siteprobe_snmp_interface_high_capacity", "eth5") == 0);
  CHECK(value(out, "siteprobe_snmp_interface_received_bytes_total", "eth5") ==
        4294000000.0 + 967296 + 1000000);
}

TEST_CASE("Traffic totals stay monotonic when an agent switches between HC and 32-bit counters", "[snmp]") {
  PollData d;
  d.columns[col(kIf, 8)][{1}] = num(SnmpVal::T::Int, 1);
  d.columns[col(kIfX, 1)][{1}] = str("Gi0/0");
  d.columns[col(kIfX, 6)][{1}] = num(SnmpVal::T::Counter64, 1000000060000ull);
  SnmpDeviceState st;
  st.apply(d, {}, 10);
  const auto bytes = [&] {
    return value(render(st), "siteprobe_snmp_interface_received_bytes_total", "Gi0/0");
  };
  CHECK(bytes() == 1000000060000.0);
  d.columns.erase(col(kIfX, 6));  // HC missing: the 32-bit column takes over
  d.columns[col(kIf, 10)][{1}] = num(SnmpVal::T::Counter32, 5000);
  st.apply(d, {}, 70);
  CHECK(bytes() == 1000000060000.0);  // a switch adds nothing, never goes back
  d.columns[col(kIf, 10)][{1}] = num(SnmpVal::T::Counter32, 6000);
  st.apply(d, {}, 130);
  CHECK(bytes() == 1000000061000.0);
  d.columns.erase(col(kIf, 10));
  d.columns[col(kIfX, 6)][{1}] = num(SnmpVal::T::Counter64, 1000000240000ull);
  st.apply(d, {}, 190);
  CHECK(bytes() == 1000000061000.0);  // back on HC: no spike of the whole 64-bit value
  d.columns[col(kIfX, 6)][{1}] = num(SnmpVal::T::Counter64, 1000000250000ull);
  st.apply(d, {}, 250);
  CHECK(bytes() == 1000000071000.0);
}

TEST_CASE("Custom objects map to gauges, counters and info series", "[snmp]") {
  SnmpObject load{"cpu_load_percent", {1, 3, 6, 1, 4, 1, 9, 1}, "gauge", true, "cpu", ""};
  SnmpObject ver{"firmware_info", {1, 3, 6, 1, 4, 1, 9, 2, 0}, "info", false, "", ""};
  SnmpObject temp{"temperature_celsius", {1, 3, 6, 1, 4, 1, 9, 3, 0}, "gauge", false, "", ""};
  PollData d;
  d.columns[load.oid][{1}] = num(SnmpVal::T::Unsigned, 12);
  d.columns[load.oid][{2, 7}] = num(SnmpVal::T::Unsigned, 85);
  d.scalars[ver.oid] = str("v9.1 \"beta\"");
  d.scalars[temp.oid] = str("41.5");  // a number sent as text
  SnmpDeviceState::Settings s;
  s.custom = {&load, &ver, &temp};
  SnmpDeviceState st;
  st.apply(d, s, 1);
  auto out = render(st);
  CHECK(value(out, "siteprobe_snmp_cpu_load_percent", "cpu=\"2.7\"") == 85);
  CHECK(value(out, "siteprobe_snmp_cpu_load_percent", "cpu=\"1\"") == 12);
  CHECK(value(out, "siteprobe_snmp_firmware_info", "value=\"v9.1 \\\"beta\\\"\"") == 1);
  CHECK(value(out, "siteprobe_snmp_temperature_celsius", "site") == 41.5);
  // Text that is not a number is a counted decode error, not a series.
  d.scalars[temp.oid] = str("hot");
  st.apply(d, s, 2);
  out = render(st);
  CHECK(out.count("siteprobe_snmp_temperature_celsius") == 0);
  CHECK(value(out, "siteprobe_snmp_errors_total", "kind=\"decode\"") == 1);
}

TEST_CASE("Custom Counter32 counters are wrap-corrected; Counter64 and gauges are raw", "[snmp]") {
  SnmpObject hits{"hits_total", {1, 3, 6, 1, 4, 1, 9, 4}, "counter", true, "port", ""};
  SnmpObject big{"bytes_total", {1, 3, 6, 1, 4, 1, 9, 5, 0}, "counter", false, "", ""};
  SnmpDeviceState::Settings s;
  s.custom = {&hits, &big};
  SnmpDeviceState st;
  PollData d;
  d.columns[hits.oid][{1}] = num(SnmpVal::T::Counter32, 4294967000u);
  d.scalars[big.oid] = num(SnmpVal::T::Counter64, 5000000000ull);
  st.apply(d, s, 1);
  CHECK(value(render(st), "siteprobe_snmp_hits_total", "port=\"1\"") == 4294967000.0);
  d.columns[hits.oid][{1}] = num(SnmpVal::T::Counter32, 704);  // wrapped: +1000
  d.scalars[big.oid] = num(SnmpVal::T::Counter64, 5000000100ull);
  st.apply(d, s, 61);
  auto out = render(st);
  CHECK(value(out, "siteprobe_snmp_hits_total", "port=\"1\"") == 4294968000.0);
  CHECK(value(out, "siteprobe_snmp_bytes_total", "site") == 5000000100.0);
  // A row that disappears and comes back starts again from its new value.
  d.columns[hits.oid].clear();
  st.apply(d, s, 121);
  CHECK(render(st).count("siteprobe_snmp_hits_total") == 0);
  d.columns[hits.oid][{1}] = num(SnmpVal::T::Counter32, 5);
  st.apply(d, s, 181);
  CHECK(value(render(st), "siteprobe_snmp_hits_total", "port=\"1\"") == 5);
}

TEST_CASE("Inventory snmp blocks: layering, validation, secrets", "[snmp][config]") {
  const std::string base = R"(
auth:
  ro: {version: 2c, community: s3cret-community}
snmp_modules:
  cpu:
    - {name: cpu_load_percent, oid: 1.3.6.1.4.1.9.9.109.1.1.1.1.8, type: gauge, walk: true, index_label: cpu}
defaults:
  snmp: {auth: ro, interval: 30s}
roles:
  vc_endpoint:
    snmp: {enabled: false}
sites:
  - id: a
    name: A
    level: province
    devices:
      - {name: r, address: 127.0.0.1, role: router, snmp: {modules: [system, interfaces, cpu], uplink: "Gi0/0"}}
      - {name: vc, address: 127.0.0.2, role: vc_endpoint}
)";
  auto r = probes::parse_inventory(base, "t.yml");
  REQUIRE(r.errors.empty());
  const auto& devs = r.config->sites[0].devices;
  REQUIRE(devs[0].snmp);
  CHECK(devs[0].snmp->interval == std::chrono::seconds(30));
  CHECK(devs[0].snmp->modules.size() == 3);
  CHECK(devs[0].snmp->uplink == "Gi0/0");
  CHECK_FALSE(devs[1].snmp);
  CHECK(summarize(*r.config).find("1 snmp") != std::string::npos);

  auto bad = probes::parse_inventory(R"(
snmp_modules:
  m:
    - {name: errors_total, oid: 1.3.6.1.2, type: counter}
    - {name: load, oid: "1.3.x", type: gauge}
    - {name: hits, oid: 1.3.6.1.4.1.1, type: counter}
defaults:
  snmp: {auth: nope, interval: 2s, timeout: 1s, retries: 1, modules: [system, vendor], uplink: "Gi[0"}
sites:
  - {id: a, name: A, level: province, devices: [{name: r, address: 127.0.0.1, role: router}]}
)",
                                     "b.yml");
  REQUIRE(bad.errors.size() == 7);
  CHECK(bad.errors[0].find("b.yml:4:14: snmp_modules.m[0].name: \"errors_total\" is a metric siteprobe") ==
        0);
  CHECK(bad.errors[1].find("b.yml:5:25: snmp_modules.m[1].oid: invalid OID") == 0);
  CHECK(bad.errors[2].find("b.yml:6:14: snmp_modules.m[2].name: a counter's name must end in _total") == 0);
  CHECK(bad.errors[3] == "b.yml:8:9: defaults.snmp: unknown auth profile \"nope\" (define it under auth)");
  CHECK(bad.errors[4].find("b.yml:8:9: defaults.snmp: unknown SNMP module \"vendor\"") == 0);
  CHECK(bad.errors[5] == "b.yml:8:9: defaults.snmp: timeout * (retries + 1) = 2s must be below interval 2s");
  CHECK(bad.errors[6].find("b.yml:8:96: defaults.snmp.uplink: invalid regular expression") == 0);
  for (const auto& e : r.errors) CHECK(e.find("s3cret") == std::string::npos);
}

TEST_CASE("A 30,000-byte ifName meets every pattern kind in linear time and is exported clipped", "[snmp]") {
  // std::regex recursed once per character here and overflowed the stack (issue #20).
  PollData d;
  const std::string huge = "lo" + std::string(30000, 'x');
  for (std::uint32_t i : {1u, 2u}) {
    d.columns[col(kIfX, 1)][{i}] = str(i == 1 ? "eth0" : huge);
    d.columns[col(kIfX, 18)][{i}] = str(std::string(20000, '\xff'));
    d.columns[col(kIf, 8)][{i}] = num(SnmpVal::T::Int, 1);
  }
  d.scalars[oid({1, 3, 6, 1, 2, 1, 1, 1, 0})] = str(std::string(3000, 'd'));
  for (const auto& s : {SnmpDeviceState::Settings({"lo.*", "(a|b)*c"}, {}, "(l|o|x)*"),
                        SnmpDeviceState::Settings({}, {"lo.*", "Null.*"}, "lo.*")}) {
    SnmpDeviceState st;
    st.apply(d, s, 1.0);
    auto out = render(st);
    const std::string& oper = out["siteprobe_snmp_interface_oper_status"];
    const bool included = !s.include.empty();
    CHECK((oper.find("if_index=\"2\"") != std::string::npos) == included);
    CHECK((oper.find("if_index=\"1\"") != std::string::npos) == !included);
    if (included) CHECK(value(out, "siteprobe_snmp_interface_uplink", "if_index=\"2\"") == 1);
    for (const auto& [family, text] : out) {
      std::size_t longest = 0;
      for (std::size_t q = text.find('"'); q != std::string::npos; q = text.find('"', q + 1)) {
        const std::size_t end = text.find('"', q + 1);
        longest = std::max(longest, end - q - 1);
        q = end;
      }
      INFO(family);
      CHECK(longest <= kMaxDisplayString);
      std::istringstream lines(text);
      for (std::string l; std::getline(lines, l);) CHECK(sanitize_utf8(l) == l);  // valid UTF-8
    }
  }
}

TEST_CASE("clip_utf8 cuts at a character boundary and yields valid UTF-8", "[snmp]") {
  CHECK(clip_utf8("Bắc Kạn", 100) == "Bắc Kạn");
  CHECK(clip_utf8("Bắc", 2) == "B");  // "ắ" is 3 bytes: not cut in half
  CHECK(clip_utf8("Bắc", 4) == "Bắ");
  CHECK(clip_utf8(std::string("\xff\xff"), 3) == "\xEF\xBF\xBD");
  CHECK(clip_utf8("abc", 0).empty());
}

TEST_CASE("Custom objects may not take any built-in SNMP family name", "[snmp][config]") {
  for (const auto& family : snmp_builtin_families()) {
    const std::string name = family.substr(std::string("siteprobe_snmp_").size());
    const std::string inv = "snmp_modules:\n  m:\n    - {name: " + name +
                            ", oid: 1.3.6.1.2.1.1.3.0, type: gauge}\n"
                            "sites:\n  - {id: a, name: A, level: province}\n";
    auto r = probes::parse_inventory(inv, "t.yml");
    INFO(name);
    CHECK_FALSE(r.config);
  }
  CHECK(std::find(snmp_builtin_families().begin(), snmp_builtin_families().end(),
                  "siteprobe_snmp_polls_in_flight") != snmp_builtin_families().end());
}

TEST_CASE("A device's SNMP text is re-rendered in place only when no scrape holds it", "[snmp]") {
  SnmpExposition x;
  const auto fill = [](double v) {
    return [v](SnmpText& t) {
      t["siteprobe_snmp_up"] +=
          "siteprobe_snmp_up{device=\"d\"} " + std::to_string(static_cast<int>(v)) + "\n";
      if (v > 1) t["siteprobe_snmp_uptime_seconds"] += "siteprobe_snmp_uptime_seconds{device=\"d\"} 5\n";
    };
  };
  x.render("p/d", fill(2));
  Exposition::Parts held = x.parts();  // a scrape in progress
  x.render("p/d", fill(1));            // must not change what that scrape reads
  std::string before, now;
  for (Exposition::Parts p = held; p(before);) {
  }
  x.Exposition::render(now);
  CHECK(before.find("siteprobe_snmp_up{device=\"d\"} 2\n") != std::string::npos);
  CHECK(before.find("siteprobe_snmp_uptime_seconds{device=\"d\"} 5\n") != std::string::npos);
  CHECK(now.find("siteprobe_snmp_up{device=\"d\"} 1\n") != std::string::npos);
  // A family that got no line this time is gone, HELP and TYPE too.
  CHECK(now.find("siteprobe_snmp_uptime_seconds") == std::string::npos);
  held = nullptr;
  x.render("p/d", fill(3));  // no scrape holds it: filled in place
  x.render("p/d", fill(4));
  now.clear();
  x.Exposition::render(now);
  CHECK(now.find("siteprobe_snmp_up{device=\"d\"} 4\n") != std::string::npos);
  CHECK(now.find("} 3\n") == std::string::npos);
  CHECK(now.find("siteprobe_snmp_uptime_seconds{device=\"d\"} 5\n") != std::string::npos);
  x.drop("p/d");
  now.clear();
  x.Exposition::render(now);
  CHECK(now.find("device=\"d\"") == std::string::npos);
}
