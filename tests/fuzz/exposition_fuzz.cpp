// Every exposition parses: arbitrary bytes as label values (as SNMP agents and SIP peers send
// them), HELP text, histogram bounds and sample values go through the renderers, and the result
// must be an exposition Prometheus accepts whole (tests/common/exposition_check.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "exposition_check.h"
#include "fuzz.h"
#include "metrics/series.h"

using namespace siteprobe;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in{data, size};
  const auto bytes = [&](std::size_t max) {
    std::string s;
    for (std::size_t n = in.u8() % (max + 1); n > 0 && in.more(); --n) s += static_cast<char>(in.u8());
    return s;
  };
  const auto number = [&] {
    double v = 0;
    std::uint8_t b[sizeof v];
    for (auto& x : b) x = in.u8();
    std::memcpy(&v, b, sizeof v);
    return v;
  };
  std::string out;
  append_header(out, "siteprobe_snmp_fuzzed", "gauge", bytes(64));
  const char* const keys[] = {"if_alias", "if_name", "sys_descr", "value", "reason"};
  for (int i = 0; in.more() && i < 16; ++i) {
    prometheus::Labels l{{"n", std::to_string(i)}};
    for (const char* k : keys)
      if (in.u8() & 1) l[k] = bytes(48);
    out += "siteprobe_snmp_fuzzed{" + render_labels(l) + "} ";
    append_value(out, number());
    out += '\n';
  }
  // A histogram with fuzzed (sorted, finite) bounds and observations.
  std::vector<double> bounds;
  for (int i = in.u8() % 6; i > 0; --i)
    if (double b = number(); std::isfinite(b)) bounds.push_back(b);
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  Histogram h(bounds);
  for (int i = in.u8() % 8; i > 0; --i) h.observe(number());
  append_header(out, "siteprobe_icmp_rtt_seconds");
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
    cum += h.buckets[i].get();
    out += "siteprobe_icmp_rtt_seconds_bucket{" + (i < h.bounds.size() ? h.le[i] : "le=\"+Inf\"") + "} ";
    append_value(out, cum);
    out += '\n';
  }
  out += "siteprobe_icmp_rtt_seconds_sum ";
  append_value(out, h.sum.get());
  out += "\nsiteprobe_icmp_rtt_seconds_count ";
  append_value(out, h.count());
  out += '\n';
  const std::string problem = test::check_exposition(out);
  check(problem.empty(), "exposition rejected:", problem + "\n" + out);
  return 0;
}
