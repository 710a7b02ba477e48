// `siteprobe report` (daemon/report.h) without a network: minutes in, causes and rows out; the
// Prometheus answers it parses, malformed ones included; the JSON reader (util/json.h).
#include "daemon/report.h"

#include <catch2/catch.hpp>

#include "probes/registry.h"
#include "util/json.h"

using namespace siteprobe;

namespace {

std::vector<std::int64_t> span(std::int64_t a, std::int64_t b) {  // [a, b)
  std::vector<std::int64_t> v;
  for (auto t = a; t < b; ++t) v.push_back(t);
  return v;
}

const char* kInv = R"(
sla: {slo: 99.5, time_zone: "+07:00", sites: {d1: 99.0, d1.c2: 99.9}}
sites:
  - {id: p, name: Tỉnh, level: province, devices: [{name: router, address: 127.0.0.1, role: router}]}
  - {id: d1, name: Huyện 1, level: district, parent: p, devices: [{name: router, address: 127.0.0.2, role: router}]}
  - {id: d1.c1, name: "=Xã 1, \"A\"", level: commune, parent: d1, devices: [{name: router, address: 127.0.0.3, role: router}]}
  - {id: d1.c2, name: <Xã 2>, level: commune, parent: d1, devices: [{name: router, address: 127.0.0.4, role: router}]}
)";

}  // namespace

TEST_CASE("report: causes, maintenance, reboot attribution, longest outage", "[report]") {
  report::SiteMinutes m;
  m.counted = 1000;
  m.down = span(100, 110);  // 10 min, a reboot seen 15 min after its end: reboot
  m.reboots = {124};
  auto down2 = span(200, 230);  // 30 min, 10 of them in a window: 20 min site_down
  m.down.insert(m.down.end(), down2.begin(), down2.end());
  m.maintenance = span(220, 260);
  m.unreachable = span(300, 340);  // parent down: 40, not held against the site
  m.endpoint = span(338, 360);     // overlaps unreachable for 2 min: 20 endpoint_down
  auto o = report::compute(m);
  CHECK(o.reboot == 10);
  CHECK(o.site_down == 20);
  CHECK(o.parent_down == 40);
  CHECK(o.endpoint_down == 20);
  CHECK(o.maintenance == 40);
  CHECK(o.down() == 50);
  CHECK(o.longest == 20);
  CHECK(o.longest_start == 200);  // the first of two 20-minute outages
  m.reboots = {125};              // 16 min after the end: not this outage's
  o = report::compute(m);
  CHECK(o.reboot == 0);
  CHECK(o.site_down == 30);
  m.reboots = {99};  // before it started
  CHECK(report::compute(m).reboot == 0);
  // Endpoint minutes adjoining a down run make one outage.
  m = {};
  m.down = span(10, 15);
  m.endpoint = span(15, 18);
  o = report::compute(m);
  CHECK(o.longest == 8);
  CHECK(o.longest_start == 10);
}

TEST_CASE("report: month bounds in the inventory's zone", "[report]") {
  std::int64_t s = 0, e = 0;
  REQUIRE(report::parse_month("2026-11", 7 * 3600, s, e));
  CHECK(s == 1793466000);  // 2026-10-31 17:00 UTC
  CHECK(e - s == 30 * std::int64_t{86400});
  REQUIRE(report::parse_month("2026-12", 0, s, e));
  CHECK(e - s == 31 * std::int64_t{86400});
  REQUIRE(report::parse_month("2028-02", 0, s, e));
  CHECK(e - s == 29 * std::int64_t{86400});
  for (const char* bad : {"2026-13", "2026-00", "2026-1", "26-11", "2026/11", "2026-11x", "", "abcd-ef"})
    CHECK_FALSE(report::parse_month(bad, 0, s, e));
}

TEST_CASE("report: rows per district, SLO overrides, csv/md/html escaping", "[report]") {
  auto r = probes::parse_inventory(kInv, "r.yml");
  REQUIRE(r.errors.empty());
  std::map<std::string, report::SiteMinutes> by;
  by["d1.c1"].counted = 1000;
  by["d1.c1"].down = span(60, 70);
  by["d1.c2"].counted = 1000;
  by["d1.c2"].down = span(0, 2);
  by["d1"].counted = 1000;
  const auto rows = report::build_rows(*r.config, by);
  REQUIRE(rows.size() == 5);
  CHECK(rows[0].site == "p");
  CHECK(rows[0].slo == 99.5);
  CHECK(rows[1].total);
  CHECK(rows[1].district == "d1");
  CHECK(rows[1].o.counted == 3000);
  CHECK(rows[1].o.site_down == 12);
  CHECK(rows[1].o.longest == 10);
  CHECK(rows[3].slo == 99.0);  // d1's override covers its commune
  CHECK(rows[4].slo == 99.9);  // a commune's own wins
  const auto csv = report::render(rows, "csv", "2026-11", "+07:00", 7 * 3600);
  CHECK(csv.find("site,d1,d1.c1,\"'=Xã 1, \"\"A\"\"\",commune,99,99.000,yes,1000,10,0,0,0,10,1970-01-01 "
                 "08:00,0\r\n") != std::string::npos);
  CHECK(csv.find("site,d1,d1.c2,<Xã 2>,commune,99.9,99.800,no,") != std::string::npos);
  CHECK(csv.find("site,,p,Tỉnh,province,99.5,n/a,n/a,0,") != std::string::npos);
  const auto html = report::render(rows, "html", "2026-11", "+07:00", 7 * 3600);
  CHECK(html.find("&lt;Xã 2&gt;") != std::string::npos);
  CHECK(html.find("<Xã 2>") == std::string::npos);
  CHECK(html.find("@media print") != std::string::npos);
  const auto md = report::render(rows, "md", "2026-11", "+07:00", 7 * 3600);
  CHECK(md.find("| **district** | **d1** |") != std::string::npos);
}

TEST_CASE("report: Prometheus answers, errors and malformed ones", "[report]") {
  std::map<std::string, std::vector<std::int64_t>> mat;
  std::string err;
  REQUIRE(report::parse_matrix(
      R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"site":"a"},"values":[[120,"3"],[180.000,"0"],[240,"1"]]}]}})",
      mat, err));
  CHECK(mat["a"] == std::vector<std::int64_t>{2, 4});
  std::map<std::string, double> vec;
  REQUIRE(report::parse_vector(
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"site":"a"},"value":[1,"42"]}]}})",
      vec, err));
  CHECK(vec["a"] == 42);
  CHECK_FALSE(
      report::parse_matrix(R"({"status":"error","errorType":"bad_data","error":"parse error"})", mat, err));
  CHECK(err == "query failed: bad_data: parse error");
  for (
      const char* bad : {
          "",
          "{",
          "<html>",
          R"({"status":"success"})",
          R"({"status":"success","data":{"resultType":"vector","result":[]}})",
          R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[]}]}})",
          R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"site":"a"},"values":[[1]]}]}})",
          R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"site":"a"},"values":[["1","2"]]}]}})",
          R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"site":"a"},"values":[[1e300,"2"]]}]}})",
          R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"site":"a"},"values":[[1,"x"]]}]}})",
      }) {
    err.clear();
    CHECK_FALSE(report::parse_matrix(bad, mat, err));
    CHECK_FALSE(err.empty());
  }
}

TEST_CASE("report json: values, escapes, and malformed input rejected", "[report][json]") {
  json::Value v;
  std::string err;
  REQUIRE(json::parse(R"( {"a":[1,-2.5e3,true,false,null,"x\u00e9\ud83d\ude00\n\"\\"],"b":{}} )", v, err));
  const auto& a = v.get("a")->items;
  REQUIRE(a.size() == 6);
  CHECK(a[1].text == "-2.5e3");
  CHECK(a[2].boolean);
  CHECK(a[4].is(json::Value::Type::Null));
  CHECK(a[5].text == "xé😀\n\"\\");
  CHECK(v.get("missing")->is(json::Value::Type::Null));
  CHECK(v.get("a")->get("x")->is(json::Value::Type::Null));
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  for (const std::string& bad : std::vector<std::string>{"",
                                                         " ",
                                                         "{",
                                                         "}",
                                                         "[1,]",
                                                         "{\"a\" 1}",
                                                         "{\"a\":1,}",
                                                         "[1 2]",
                                                         "01",
                                                         "1.",
                                                         "-",
                                                         "1e",
                                                         "tru",
                                                         "nul",
                                                         "\"abc",
                                                         "\"\\x\"",
                                                         "\"\\u12\"",
                                                         "\"\\ud800\"",
                                                         "\"\\udc00x\"",
                                                         "\"a\nb\"",
                                                         "\"\xff\"",
                                                         "[1] 2",
                                                         "{'a':1}",
                                                         "[\"\xc3\"]",
                                                         deep,
                                                         std::string("[1,\0]", 5)}) {
    err.clear();
    CHECK_FALSE(json::parse(bad, v, err));
    CHECK(err.rfind("offset ", 0) == 0);
  }
  REQUIRE(json::parse(std::string(64, '[') + std::string(64, ']'), v, err));
}
