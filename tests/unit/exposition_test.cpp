#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "exposition_check.h"
#include "metrics/series.h"

using namespace siteprobe;
using test::check_exposition;

TEST_CASE("the exposition checker rejects what makes Prometheus drop a scrape") {
  const std::string ok =
      "# HELP a_total x\n# TYPE a_total counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} NaN\n";
  CHECK(check_exposition(ok).empty());
  for (const char* bad : {
           "a{x=\"1\"} 1",                        // no final newline
           "# HELP a x\n# HELP a y\n",            // second HELP
           "# TYPE a gauge\n# TYPE a counter\n",  // second TYPE
           "# TYPE a gauges\n",                   // bad type
           "a{x=\"1\"} 1\nb 1\na{x=\"2\"} 1\n",   // samples apart
           "a{x=\"1\"} 1\na{x=\"1\"} 2\n",        // series twice
           "a{x=\"1\",x=\"2\"} 1\n",              // label twice
           "a{x=\"\\t\"} 1\n",                    // bad escape
           "a{x=\"\xff\"} 1\n",                   // invalid UTF-8
           "a{1x=\"v\"} 1\n",                     // bad label name
           "a{__x=\"v\"} 1\n",                    // reserved label name
           "a-b 1\n",                             // bad metric name
           "a 1x\n",                              // bad value
           "a{x=\"v} 1\n",                        // unterminated value
           "a 1\n# TYPE a gauge\n",               // TYPE after samples
           "# HELP a x\\y\n",                     // bad escape in HELP
       }) {
    INFO(bad);
    CHECK_FALSE(check_exposition(bad).empty());
  }
}

TEST_CASE("rendered labels and headers are valid whatever the bytes") {
  std::string out;
  append_header(out, "siteprobe_snmp_custom", "gauge", "help with \\ and \n and \xc3\x28 bytes");
  const std::string nasty[] = {"\xff\xfe", "a\"b\\c\nd", std::string("nul\0in", 6), "\xed\xa0\x80 surrogate",
                               "ok Bắc Kạn"};
  int i = 0;
  for (const auto& v : nasty) {
    out += "siteprobe_snmp_custom{" + render_labels({{"if_alias", v}, {"n", std::to_string(i++)}}) + "} ";
    append_value(out, i == 1 ? std::numeric_limits<double>::infinity() : std::nan(""));
    out += '\n';
  }
  CHECK(check_exposition(out) == "");
  CHECK(out.find("Bắc Kạn") != std::string::npos);  // valid text is kept as it is
}
