// The inventory parser's internals, shared by its translation units (not part of the inventory's
// interface: include inventory/config.h):
//   config.cpp  text checks (encoding, alias expansion), the top level, load_config/parse_config;
//   blocks.cpp  probe blocks: icmp, snmp (and its modules), sip, tcp, the probe types' own blocks
//   (BlockSchema), defaults/roles/profiles; sites.cpp   levels, global, site_state, auth, sites and devices,
//   the tree.
#pragma once

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "metrics/families.h"

namespace siteprobe::inventory_detail {

inline const std::set<std::string> kBuiltinRoles = {"router", "switch", "firewall", "vc_endpoint",
                                                    "mcu",    "server", "other"};
// Label names siteprobe itself puts on series; levels and free labels may not reuse them.
inline const std::set<std::string>& kReservedLabels = reserved_labels();

// A numeric OID, "1.3.6.1.4.1.9.9.1" (a leading dot allowed): 2..128 arcs of 32 bits, else empty.
std::vector<std::uint32_t> parse_numeric_oid(std::string t);
// Only ASCII digits, and at least one.
inline bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
}

struct IcmpOverride {
  std::optional<Duration> interval, timeout, spacing;
  std::optional<int> packets, payload_bytes;
  std::optional<std::vector<double>> rtt_buckets;

  void apply_to(IcmpSettings& s) const {
    if (interval) s.interval = *interval;
    if (timeout) s.timeout = *timeout;
    if (spacing) s.spacing = *spacing;
    if (packets) s.packets = *packets;
    if (payload_bytes) s.payload_bytes = *payload_bytes;
    if (rtt_buckets) s.rtt_buckets = *rtt_buckets;
  }
};

struct SnmpOverride {
  std::optional<bool> enabled;
  std::optional<std::string> auth, uplink;
  std::optional<int> port, retries, max_repetitions, max_interfaces;
  std::optional<Duration> interval, timeout;
  std::optional<std::vector<std::string>> modules, include, exclude;

  void apply_to(SnmpSettings& s, bool& on) const {
    if (enabled) on = *enabled;
    if (auth) s.auth = *auth;
    if (uplink) s.uplink = *uplink;
    if (port) s.port = *port;
    if (retries) s.retries = *retries;
    if (max_repetitions) s.max_repetitions = *max_repetitions;
    if (max_interfaces) s.max_interfaces = *max_interfaces;
    if (interval) s.interval = *interval;
    if (timeout) s.timeout = *timeout;
    if (modules) s.modules = *modules;
    if (include) s.interfaces_include = *include;
    if (exclude) s.interfaces_exclude = *exclude;
  }
};

using BlockAt = std::optional<std::pair<YAML::Mark, std::string>>;  // where a block is, if any

// The `sip:` block as one layer wrote it.
struct ServiceOverride {
  std::optional<bool> enabled;
  std::optional<std::string> transport;
  std::optional<int> port;
  std::optional<Duration> interval, timeout;
  BlockAt at;

  void apply_to(SipSettings& s) const {
    if (enabled) s.enabled = *enabled;
    if (transport) s.transport = *transport;
    if (port) s.port = *port;
    if (interval) s.interval = *interval;
    if (timeout) s.timeout = *timeout;
  }
};

// A probe type's own block (BlockSchema) as one layer wrote it.
struct BlockOverride {
  std::optional<bool> enabled;
  std::map<std::string, BlockValue> values;
  BlockAt at;
};

struct Overrides {
  IcmpOverride icmp;
  SnmpOverride snmp;
  BlockAt icmp_at, snmp_at;
  ServiceOverride sip;
  std::optional<std::vector<TcpCheck>> tcp;     // replaced whole, like rtt_buckets
  std::optional<std::string> criticality;       // critical, major or minor
  std::map<std::string, BlockOverride> blocks;  // by BlockSchema::name
};

inline const std::set<std::string> kCriticalities = {"critical", "major", "minor"};

// Whether "siteprobe_snmp_" + name is a family the SNMP prober exports itself (from its own list,
// so a new built-in family is reserved the day it is added).
inline bool snmp_builtin(const std::string& name) {
  return name.rfind("interface_", 0) == 0 || find_family("siteprobe_snmp_" + name) != nullptr;
}

// Plain decimal for messages: 1000000, not 1e+06; 0.000001, not 1e-06.
inline std::string fmt_num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6f", v);
  std::string s = b;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

// Strict number syntax: no hex, no leading '+' or spaces (strtod would take them).
inline bool plain_number(const std::string& s, bool integer) {
  std::size_t i = s[0] == '-' ? 1 : 0, digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (!integer && i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  }
  return digits > 0 && i == s.size();
}

inline bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

inline bool valid_label_name(const std::string& s) {
  if (s.empty() || !(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  if (s.rfind("__", 0) == 0) return false;  // reserved for Prometheus itself
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_';
  });
}

inline bool valid_hostname(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  std::string label;
  std::istringstream in(s);
  bool all_numeric_tld = false;
  while (std::getline(in, label, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    all_numeric_tld = std::all_of(label.begin(), label.end(),
                                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  }
  return s.back() != '.' ? !all_numeric_tld : true;
}

class Parser {
 public:
  Parser(std::string name, std::string base_dir, std::vector<BlockSchema> blocks)
      : name_(std::move(name)), base_(std::move(base_dir)), schemas_(std::move(blocks)) {}

  LoadResult run(const std::string& text);
  void parse(const std::string& text);

 private:
  std::string name_, base_;
  std::vector<BlockSchema> schemas_;                       // the probe types' own blocks
  std::map<std::string, BlockSettings::Values> built_in_;  // their built-in values, by block
  // Every distinct set of block values, shared by the devices that have it (BlockSettings).
  std::map<BlockSettings::Values, std::shared_ptr<const BlockSettings::Values>> interned_;
  std::vector<std::string> errors_;
  Config cfg_;
  IcmpSettings defaults_;
  std::map<std::string, Overrides> roles_, profiles_;
  Overrides defaults_block_;
  std::set<std::string> round_reported_;  // report a round that does not fit once per cause

  // Errors are kept with their position so they can be listed in file order.
  struct Error {
    int line, column;
    std::string text;
  };
  std::vector<Error> found_;
  bool levels_ok_ = true;

  // Encoding and alias expansion, before YAML is built; false if the text must not be parsed.
  bool check_text(const std::string& text);
  static constexpr std::uint64_t kMaxExpandedNodes = 1000000, kMaxExpansion = 10;
  std::size_t devices_seen_ = 0;
  std::vector<std::string> warnings_;
  std::string text_;                                                     // for at()
  std::map<std::string, std::pair<YAML::Mark, std::string>> addresses_;  // address -> first device

  std::string where(const YAML::Mark& m) const {
    return name_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  void warn(const YAML::Mark& m, const std::string& path, const std::string& what) {
    warnings_.push_back(where(m) + ": " + path + ": warning: " + what);
  }
  // Where a value is: a null value ("name:" and nothing after) is marked by yaml-cpp at the next
  // token, often the next line; point at the end of its key's line instead.
  YAML::Mark at(const YAML::Node& n) const {
    YAML::Mark m = n.Mark();
    if (!n.IsNull() || m.pos <= 0 || static_cast<std::size_t>(m.pos) > text_.size()) return m;
    std::size_t p = static_cast<std::size_t>(m.pos);
    while (p > 0 && (text_[p - 1] == ' ' || text_[p - 1] == '\n' || text_[p - 1] == '\r')) {
      if (text_[p - 1] == '\n') --m.line;
      --p;
    }
    const std::size_t bol = text_.rfind('\n', p ? p - 1 : 0);
    m.pos = static_cast<int>(p);
    m.column = static_cast<int>(p - (bol == std::string::npos ? 0 : bol + 1));
    return m;
  }

  void error(const YAML::Mark& m, const std::string& path, const std::string& what) {
    const int line = m.line >= 0 ? m.line + 1 : 1, col = m.line >= 0 ? m.column + 1 : 1;
    found_.push_back({line, col,
                      name_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
                          (path.empty() ? "(top level)" : path) + ": " + what});
  }

  // Checks that `node` is a mapping whose keys are all in `allowed`; reports unknown and duplicate
  // keys. Returns false if `node` is not a mapping.
  bool check_map(const YAML::Node& node, const std::string& path, const std::vector<std::string>& allowed) {
    if (!node.IsMap()) {
      error(node.Mark(), path, "must be a mapping");
      return false;
    }
    // A repeated first key with other keys repeated after it is a new list item whose "- " was
    // forgotten: one error for the item, not one per key it repeats.
    std::map<std::string, YAML::Mark> seen;
    std::string first_key;
    std::vector<std::pair<std::string, YAML::Mark>> dups;
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (first_key.empty()) first_key = key;
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        error(kv.first.Mark(), path.empty() ? key : path + "." + key, "unknown key (allowed: " + list + ")");
      } else if (!seen.emplace(key, kv.first.Mark()).second) {
        dups.emplace_back(key, kv.first.Mark());
      }
    }
    const auto kp = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
    if (dups.size() > 1 && dups[0].first == first_key) {
      error(dups[0].second, kp(first_key),
            "duplicate key; this looks like a new list item without \"- \" (the item starts at line " +
                std::to_string(seen[first_key].line + 1) + ")");
      return true;
    }
    for (const auto& [key, mark] : dups)
      error(mark, kp(key), "duplicate key (first at line " + std::to_string(seen[key].line + 1) + ")");
    return true;
  }

  std::optional<std::string> string_of(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) {
      error(at(n), path, n.IsNull() ? "is empty (a value is required here)" : "must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<long> int_of(const YAML::Node& n, const std::string& path, long lo, long hi) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      char* end = nullptr;
      errno = 0;
      long v = plain_number(s, true) ? std::strtol(s.c_str(), &end, 10) : 0;
      if (end && *end == '\0') {
        if (errno == ERANGE || v < lo || v > hi) {
          error(at(n), path,
                "out of range: " + s + " (allowed: " + std::to_string(lo) + ".." + std::to_string(hi) + ")");
          return std::nullopt;
        }
        return v;
      }
    }
    error(at(n), path,
          "must be an integer (allowed: " + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return std::nullopt;
  }

  std::optional<double> number_of(const YAML::Node& n, const std::string& path, double lo, double hi) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      char* end = nullptr;
      double v = plain_number(s, false) ? std::strtod(s.c_str(), &end) : 0;
      if (end && *end == '\0') {
        if (v < lo || v > hi) {
          error(at(n), path, "out of range: " + s + " (allowed: " + fmt_num(lo) + ".." + fmt_num(hi) + ")");
          return std::nullopt;
        }
        return v;
      }
    }
    error(at(n), path, "must be a number (allowed: " + fmt_num(lo) + ".." + fmt_num(hi) + ")");
    return std::nullopt;
  }

  std::optional<Duration> duration_of(const YAML::Node& n, const std::string& path, Duration lo,
                                      Duration hi) {
    auto allowed = "(allowed: " + format_duration(lo) + ".." + format_duration(hi) + ")";
    if (!n.IsScalar()) {
      error(at(n), path, "must be a duration like 500ms, 10s, 5m " + allowed);
      return std::nullopt;
    }
    auto d = parse_duration(n.Scalar());
    if (!d) {
      error(at(n), path,
            "invalid duration \"" + n.Scalar() +
                "\" (use e.g. 500ms, 10s, 5m or 1h30m: units h, m, s, ms in that order)");
      return std::nullopt;
    }
    if (*d < lo || *d > hi) {
      error(at(n), path, "out of range: " + n.Scalar() + " " + allowed);
      return std::nullopt;
    }
    return d;
  }

  std::optional<std::string> secret_of(const YAML::Node& parent, const std::string& key,
                                       const std::string& path);

  IcmpOverride parse_icmp(const YAML::Node& n, const std::string& path);
  SnmpOverride parse_snmp(const YAML::Node& n, const std::string& path);
  void parse_snmp_modules(const YAML::Node& n);
  std::optional<std::vector<std::string>> string_list(const YAML::Node& n, const std::string& path,
                                                      bool regex);
  Overrides parse_overrides(const YAML::Node& n, const std::string& path);
  ServiceOverride parse_sip(const YAML::Node& n, const std::string& path);
  BlockOverride parse_block(const BlockSchema& b, const YAML::Node& n, const std::string& path);
  std::optional<BlockValue> block_value(const BlockKey& k, const YAML::Node& v, const std::string& path);
  // `keys` and the name of every probe type's own block.
  std::vector<std::string> with_blocks(std::vector<std::string> keys) const {
    for (const auto& b : schemas_) keys.push_back(b.name);
    return keys;
  }
  std::optional<std::vector<TcpCheck>> parse_tcp(const YAML::Node& n, const std::string& path);
  void parse_call_blocks(const YAML::Node& n, const std::string& path, Overrides& o);
  void apply_call_blocks(const YAML::Node& n, const std::string& path, Device& d);
  std::optional<std::string> criticality_of(const YAML::Node& n, const std::string& path);
  void apply_criticality(const YAML::Node& n, const std::string& path, const Site& site, Device& d);
  std::optional<bool> bool_of(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) return n.Scalar() == "true";
    error(n.Mark(), path, "must be true or false");
    return std::nullopt;
  }
  void parse_levels(const YAML::Node& n);
  void parse_global(const YAML::Node& n);
  void parse_site_state(const YAML::Node& n);
  void parse_auth(const YAML::Node& n);
  void parse_sites(const YAML::Node& n);
  void parse_conferences(const YAML::Node& n);
  void parse_maintenance(const YAML::Node& n);
  void parse_sla(const YAML::Node& n);
  void parse_traps(const YAML::Node& n);
  void parse_trace(const YAML::Node& n);
  void parse_expected_path(const YAML::Node& n, const std::string& path, Site& site);
  std::optional<int> hhmm_of(const YAML::Node& n, const std::string& path);
  // Day names (mon..sun, any case) into 0 = Sunday .. 6; false after reporting an error.
  bool weekdays_of(const YAML::Node& v, const std::string& path, std::vector<int>& out);
  // Subtrees or sites by selector (a site id, {district: ID}, {subtree: ID}; with `devices`, also
  // SITE/DEVICE); false after reporting an error.
  bool select_sites(const YAML::Node& e, const std::string& path, std::set<std::string>& sites,
                    std::vector<std::string>* devices, std::string& text);
  bool resolve_snmp(const YAML::Node& n, const std::string& path, Device& d);
  std::set<std::string> snmp_reported_;
  void parse_device(const YAML::Node& n, const std::string& path, Site& site,
                    std::map<std::string, YAML::Mark>& names);
  void secret_too_short(const YAML::Node& a, const std::string& path, const std::string& key);
  struct SiteRef {
    std::string path;
    YAML::Mark site, parent, level;
    std::vector<YAML::Mark> backups;  // of each backup_parents entry
  };
  void check_tree(const std::vector<SiteRef>& refs, const std::set<std::string>& all_ids);
};

}  // namespace siteprobe::inventory_detail
