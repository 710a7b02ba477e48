// The `traps` block (docs/inventory.md#traps): the SNMP trap and inform receiver.
#include <string>

#include "inventory/parser.h"
#include "util/net.h"

namespace siteprobe::inventory_detail {
namespace {

// "host:port" with an IPv4 literal, or "[v6]:port".
bool valid_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size() || s.size() - colon > 6) return false;
  std::string host = s.substr(0, colon);
  const std::string port = s.substr(colon + 1);
  if (!all_digits(port) || std::stoi(port) < 1 || std::stoi(port) > 65535) return false;
  const bool v6 = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (v6) host = host.substr(1, host.size() - 2);
  const auto a = net::parse_ip(host);
  return a && (a->ss_family == AF_INET6) == v6;
}

// "0x80001f8804..." or "80001f8804...": 5 to 32 bytes (RFC 3411 SnmpEngineID), else empty.
std::vector<std::uint8_t> parse_engine_id(std::string s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.erase(0, 2);
  std::vector<std::uint8_t> id;
  if (s.size() % 2 != 0 || s.size() < 10 || s.size() > 64) return id;
  const auto nibble = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const int hi = nibble(s[i]), lo = nibble(s[i + 1]);
    if (hi < 0 || lo < 0) return {};
    id.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return id;
}

}  // namespace

std::vector<std::uint32_t> parse_numeric_oid(std::string t) {
  if (!t.empty() && t[0] == '.') t.erase(0, 1);
  std::vector<std::uint32_t> oid;
  for (std::size_t i = 0; i <= t.size();) {
    const std::size_t end = std::min(t.find('.', i), t.size());
    const std::string part = t.substr(i, end - i);
    if (part.size() > 10 || !all_digits(part) || std::stoull(part) > 0xffffffffULL) return {};
    oid.push_back(static_cast<std::uint32_t>(std::stoull(part)));
    i = end + 1;
  }
  return oid.size() >= 2 && oid.size() <= 128 ? oid : std::vector<std::uint32_t>{};
}

void Parser::parse_traps(const YAML::Node& n) {
  if (!check_map(n, "traps",
                 {"listen", "max_per_second", "max_per_source", "debounce", "engine_id", "vendor"}))
    return;
  TrapSettings& t = cfg_.traps;
  if (auto v = n["listen"])
    if (auto s = string_of(v, "traps.listen")) {
      if (valid_listen(*s))
        t.listen = *s;
      else
        error(at(v), "traps.listen",
              "\"" + *s +
                  "\" is not ADDRESS:PORT (allowed: an IP literal and a port, e.g. 127.0.0.1:9162 or "
                  "[::1]:162)");
    }
  if (auto v = n["max_per_second"])
    if (auto i = int_of(v, "traps.max_per_second", 1, 100000)) t.max_per_second = static_cast<int>(*i);
  if (auto v = n["max_per_source"])
    if (auto i = int_of(v, "traps.max_per_source", 1, 100000)) t.max_per_source = static_cast<int>(*i);
  if (auto v = n["engine_id"])
    if (auto s = string_of(v, "traps.engine_id")) {
      t.engine_id = parse_engine_id(*s);
      if (t.engine_id.empty())
        error(at(v), "traps.engine_id",
              "\"" + *s +
                  "\" is not an SNMP engine ID (allowed: 5 to 32 bytes in hex, e.g. 0x80001f880473697465)");
    }
  using namespace std::chrono;
  if (auto v = n["debounce"])
    if (auto d = duration_of(v, "traps.debounce", seconds(1), hours(1))) t.debounce = *d;
  const YAML::Node list = n["vendor"];
  if (!list) return;
  if (!list.IsSequence()) {
    error(list.Mark(), "traps.vendor", "must be a list of {oid, kind, severity}");
    return;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const YAML::Node e = list[i];
    const std::string p = "traps.vendor[" + std::to_string(i) + "]";
    if (!check_map(e, p, {"oid", "kind", "severity"})) continue;
    TrapVendor tv;
    tv.severity = "warning";
    if (auto v = e["oid"]) {
      tv.oid = v.IsScalar() ? parse_numeric_oid(v.Scalar()) : std::vector<std::uint32_t>{};
      if (tv.oid.empty())
        error(at(v), p + ".oid", "invalid OID (allowed: numeric, e.g. 1.3.6.1.4.1.5596.10.1)");
    } else {
      error(e.Mark(), p, "missing required key \"oid\"");
    }
    if (auto v = e["kind"]) {
      if (auto s = string_of(v, p + ".kind")) {
        if (valid_label_name(*s) && s->size() <= 64)
          tv.kind = *s;
        else
          error(at(v), p + ".kind", "invalid kind \"" + *s + "\" (allowed: [a-z_][a-z0-9_]*, at most 64)");
      }
    } else {
      error(e.Mark(), p, "missing required key \"kind\"");
    }
    if (auto v = e["severity"])
      if (auto s = string_of(v, p + ".severity")) {
        if (*s == "info" || *s == "warning" || *s == "critical")
          tv.severity = *s;
        else
          error(at(v), p + ".severity", "invalid severity \"" + *s + "\" (allowed: info, warning, critical)");
      }
    for (const auto& o : t.vendor)
      if (!tv.oid.empty() && o.oid == tv.oid) error(e.Mark(), p + ".oid", "duplicate OID");
    t.vendor.push_back(std::move(tv));
  }
}

}  // namespace siteprobe::inventory_detail
