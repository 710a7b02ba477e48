// libFuzzer target: the inventory parser and validator on arbitrary text.
//
// Beyond "no crash, no sanitizer report", it checks the all-or-nothing contract: a load returns
// either a config and no errors, or no config and at least one error, each starting with the file
// name and a line:column; and a config that loads renders and summarises without trouble.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz.h"
#include "inventory/config.h"
#include "probes/registry.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A generated *_file key may name /dev/stdin: make it read EOF instead of blocking.
  check(std::freopen("/dev/null", "r", stdin) != nullptr, "reopen stdin");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A base directory that does not exist: relative secret files never resolve to repo files.
  const auto r = siteprobe::probes::parse_inventory(text, "fuzz.yml", "/nonexistent-siteprobe-fuzz");
  check(!r.config != r.errors.empty(), "config xor errors");
  for (const auto& e : r.errors) {
    unsigned line = 0, col = 0;
    check(std::sscanf(e.c_str(), "fuzz.yml:%u:%u: ", &line, &col) == 2 && line > 0 && col > 0,
          "error without fuzz.yml:LINE:COL");
  }
  if (r.config) {
    const auto& c = *r.config;
    check(!c.sites.empty() && !c.levels.empty(), "a config with no sites or levels");
    for (const auto& s : c.sites) {
      check(s.level_index < c.levels.size() && s.chain.size() == c.levels.size(), "site level/chain");
      for (const auto& d : s.devices)
        check(d.icmp.interval.count() > 0 && d.icmp.packets > 0 && !d.icmp.rtt_buckets.empty(), "icmp");
    }
    (void)siteprobe::summarize(c);
  }
  // Durations: parse, format and parse again gives the same value. format_duration is for
  // messages about settings (at most 100 minutes); from 10^9 ms (11.6 days) up it writes more
  // digits than parse_duration takes, so those are left out.
  if (auto d = siteprobe::parse_duration(text); d && *d < std::chrono::milliseconds(1000000000)) {
    const auto again = siteprobe::parse_duration(siteprobe::format_duration(*d));
    check(again && *again == *d, "format_duration does not round-trip");
  }
  return 0;
}
