// The `trace` block and a site's `expected_path` (docs/inventory.md#trace): path diagnosis.
#include <string>

#include "inventory/parser.h"
#include "util/net.h"

namespace siteprobe::inventory_detail {

void Parser::parse_trace(const YAML::Node& n) {
  if (!check_map(n, "trace", {"max_hops", "max_per_minute", "timeout", "interval"})) return;
  TraceSettings& t = cfg_.trace;
  if (auto v = n["max_hops"])
    if (auto i = int_of(v, "trace.max_hops", 1, 63)) t.max_hops = static_cast<int>(*i);
  if (auto v = n["max_per_minute"])
    if (auto i = int_of(v, "trace.max_per_minute", 1, 600)) t.max_per_minute = static_cast<int>(*i);
  using namespace std::chrono;
  if (auto v = n["timeout"])
    if (auto d = duration_of(v, "trace.timeout", milliseconds(100), seconds(10))) t.timeout = *d;
  if (auto v = n["interval"])
    if (auto d = duration_of(v, "trace.interval", seconds(10), hours(24))) t.interval = *d;
}

void Parser::parse_expected_path(const YAML::Node& n, const std::string& path, Site& site) {
  if (!n.IsSequence() || n.size() == 0 || n.size() > 63) {
    error(n.Mark(), path, "must be a list of 1 to 63 hop addresses (IP literals), nearest first");
    return;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    auto s = string_of(n[i], p);
    if (!s) continue;
    if (const auto a = net::parse_ip(*s))
      site.expected_path.push_back(net::ip_text(*a));  // one spelling: a trace reports it so
    else
      error(at(n[i]), p, "\"" + *s + "\" is not an IP address (allowed: an IPv4 or IPv6 literal)");
  }
}

}  // namespace siteprobe::inventory_detail
