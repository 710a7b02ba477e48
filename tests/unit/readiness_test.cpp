#include "daemon/readiness.h"

#include <catch2/catch.hpp>

#include "probes/registry.h"

using namespace siteprobe;

namespace {

// A district D with its router and a codec `vc` (SIP and H.323), under province P.
struct Net {
  std::shared_ptr<const Config> cfg;
  SiteStates st{nullptr};
  Readiness rd;
  Net() {
    auto r = probes::parse_inventory(R"(
site_state: {down_after: 1, up_after: 1, window: 2}
readiness: {min_mos: 4}
sites:
  - {id: P, name: Tỉnh, level: province, devices: [{name: r, address: 127.0.0.1, role: router}]}
  - id: D
    name: Huyện Ba Bể
    level: district
    parent: P
    devices:
      - {name: r, address: 127.0.0.2, role: router}
      - {name: vc, address: 127.0.0.3, role: vc_endpoint}
      - {name: cam, address: 127.0.0.4, role: other}
)",
                                     "t.yml");
    REQUIRE(r.config);
    cfg = r.config;
    st.configure(cfg);
    rd.configure(cfg);
  }
  // One ICMP round for every device: `up` devices answer with `rtt`, the others not.
  void round(bool router_up, bool vc_up, double rtt = 0.01) {
    st.on_round("P/r", {5, 5, 0.01, 0.001});
    st.on_round("D/r", {5, router_up ? 5 : 0, 0.01, 0.001});
    st.on_round("D/vc", {5, vc_up ? 5 : 0, rtt, 0.001});
    st.evaluate();
    rd.evaluate(st);
  }
  void check(const char* service, bool up, const char* detail, bool call_service = true) {
    rd.on_check("D/vc", {service, up, detail, call_service});
    rd.evaluate(st);
  }
  std::string report() {
    bool all = false;
    return rd.report(all);
  }
};

}  // namespace

TEST_CASE("readiness counts a check as a call service because its prober says so, not by its name") {
  Net n;
  for (int i = 0; i < 3; ++i) n.round(true, true);
  // A TCP check that an operator happened to name "sip" is not the SIP call service.
  n.check("sip", true, "connected", false);
  n.check("h323", true, "connected", false);
  CHECK(n.rd.reason("D/vc") == Readiness::Unknown);
  n.check("h323", true, "connected");
  CHECK(n.rd.reason("D/vc") == Readiness::Ready);
}

TEST_CASE("readiness: ping, a call service and MOS, with the first failing reason") {
  Net n;
  n.rd.evaluate(n.st);
  CHECK(n.rd.reason("D/vc") == Readiness::Unknown);  // nothing measured yet
  std::string m;
  n.rd.render(m);
  CHECK(m.find("siteprobe_endpoint_ready{device=\"vc\",district=\"D\",level=\"district\",province=\"P\",role="
               "\"vc_endpoint\","
               "site=\"D\"} 0") != std::string::npos);
  CHECK(m.find("device=\"cam\"") == std::string::npos);  // not an endpoint
  CHECK(m.find("site=\"D\",reason=\"unknown\"} 1\n") != std::string::npos);
  CHECK(m.find("reason=\"low_mos\"") == std::string::npos);  // only the current reason has a series

  n.round(true, true);
  CHECK(n.rd.reason("D/vc") == Readiness::Unknown);  // ping fine, no call service answer yet
  n.check("sip", false, "503");
  CHECK(n.rd.reason("D/vc") == Readiness::Unknown);  // H.323 not checked yet: not all services down
  n.check("h323", false, "refused");
  CHECK(n.rd.reason("D/vc") == Readiness::CallServiceDown);
  CHECK(n.report().find("call service down  SIP 503, H.323 refused") != std::string::npos);
  n.check("h323", true, "connected");
  CHECK(n.rd.reason("D/vc") == Readiness::Ready);  // one call service is enough
  bool all = false;
  CHECK(n.rd.report(all).find("all 1 endpoints READY (min MOS 4)") != std::string::npos);
  CHECK(all);
  m.clear();
  n.rd.render(m);
  CHECK(m.find("site=\"D\"} 1\n") != std::string::npos);
  CHECK(m.find("siteprobe_endpoint_not_ready_reason{") == std::string::npos);  // ready: no reason series

  n.round(true, true, 0.3);  // a slow path: MOS below 4
  n.round(true, true, 0.3);
  CHECK(n.rd.reason("D/vc") == Readiness::LowMos);

  n.round(true, false);  // the codec stops answering ping
  CHECK(n.rd.reason("D/vc") == Readiness::DeviceDown);
  CHECK(n.report().find("device down  no ping reply; SIP 503") != std::string::npos);

  n.round(false, false);  // the district router too: the site is down
  CHECK(n.rd.reason("D/vc") == Readiness::SiteDown);
  const std::string rep = n.report();
  INFO(rep);
  CHECK(rep.find("1 of 1 endpoints NOT READY") != std::string::npos);
  CHECK(rep.find("\nHuyện Ba Bể (D): 1 not ready\n") != std::string::npos);
  CHECK(rep.find("  Huyện Ba Bể (D)  vc      site down") != std::string::npos);
  all = true;
  n.rd.report(all);
  CHECK_FALSE(all);
}

TEST_CASE("readiness: a reload keeps the last call-service answers of unchanged endpoints") {
  Net n;
  n.round(true, true);
  n.check("sip", true, "200");
  n.check("h323", false, "refused");
  CHECK(n.rd.reason("D/vc") == Readiness::Ready);
  n.rd.configure(n.cfg);
  n.rd.evaluate(n.st);
  CHECK(n.rd.reason("D/vc") == Readiness::Ready);
}

TEST_CASE("an endpoint at a site on its backup path is not ready: on_backup_path") {
  auto r = probes::parse_inventory(R"(
site_state: {down_after: 1, up_after: 1, window: 2}
sites:
  - {id: P, name: Tỉnh, level: province, devices: [{name: r, address: 127.0.0.1, role: router}]}
  - {id: D, name: Huyện, level: district, parent: P, devices: [{name: r, address: 127.0.0.2, role: router}]}
  - id: C
    name: Xã Bằng Lãng
    level: commune
    parent: D
    backup_parents: [P]
    devices:
      - {name: r, address: 127.0.0.3, role: router}
      - {name: wan, address: 127.0.0.4, role: other, path: primary}
      - {name: vc, address: 127.0.0.5, role: vc_endpoint}
)",
                                   "t.yml");
  REQUIRE(r.config);
  SiteStates st{nullptr};
  Readiness rd;
  st.configure(r.config);
  rd.configure(r.config);
  auto round = [&](bool primary) {
    for (const char* k : {"P/r", "D/r", "C/r", "C/vc"}) st.on_round(k, {5, 5, 0.01, 0.001});
    st.on_round("C/wan", {5, primary ? 5 : 0, 0.01, 0.001});
    st.evaluate();
    rd.on_check("C/vc", {"sip", true, "200 OK", true});
    rd.evaluate(st);
  };
  round(true);
  CHECK(rd.reason("C/vc") == Readiness::Ready);
  round(false);
  CHECK(rd.reason("C/vc") == Readiness::OnBackupPath);
  bool all = true;
  const std::string rep = rd.report(all);
  CHECK_FALSE(all);
  CHECK(rep.find("on backup path") != std::string::npos);
  std::string m;
  rd.render(m);
  CHECK(m.find("reason=\"on_backup_path\"} 1") != std::string::npos);
  round(true);
  CHECK(rd.reason("C/vc") == Readiness::Ready);
}
