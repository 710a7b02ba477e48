// Inventory parsing and validation.
//
// The parser walks the YAML tree once, checks every key against the allowed set for its block, and
// records each problem with the node's position instead of stopping at the first. Cross-references
// (parents, levels, cycles, profiles, auth) are checked after the walk. Only an inventory with no
// error at all becomes a Config.
#include "inventory/config.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include "metrics/families.h"
#include "util/pattern.h"
#include "util/text.h"

namespace siteprobe {
namespace {

const std::set<std::string> kBuiltinRoles = {"router", "switch", "firewall", "vc_endpoint",
                                             "mcu",    "server", "other"};
// Label names siteprobe itself puts on series; levels and free labels may not reuse them.
const std::set<std::string>& kReservedLabels = reserved_labels();

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

// A `sip:` or `h323:` block; `transport` is for sip only.
struct ServiceOverride {
  std::optional<bool> enabled;
  std::optional<std::string> transport;
  std::optional<int> port;
  std::optional<Duration> interval, timeout;
  BlockAt at;

  template <typename S>
  void apply_to(S& s) const {
    if (enabled) s.enabled = *enabled;
    if constexpr (std::is_same_v<S, SipSettings>)
      if (transport) s.transport = *transport;
    if (port) s.port = *port;
    if (interval) s.interval = *interval;
    if (timeout) s.timeout = *timeout;
  }
};

struct Overrides {
  IcmpOverride icmp;
  SnmpOverride snmp;
  BlockAt icmp_at, snmp_at;
  ServiceOverride sip, h323;
  std::optional<std::vector<TcpCheck>> tcp;  // replaced whole, like rtt_buckets
};

// Whether "siteprobe_snmp_" + name is a family the SNMP prober exports itself (from its own list,
// so a new built-in family is reserved the day it is added).
bool snmp_builtin(const std::string& name) {
  return name.rfind("interface_", 0) == 0 || find_family("siteprobe_snmp_" + name) != nullptr;
}

// Plain decimal for messages: 1000000, not 1e+06; 0.000001, not 1e-06.
std::string fmt_num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6f", v);
  std::string s = b;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

// Strict number syntax: no hex, no leading '+' or spaces (strtod would take them).
bool plain_number(const std::string& s, bool integer) {
  std::size_t i = s[0] == '-' ? 1 : 0, digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (!integer && i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  }
  return digits > 0 && i == s.size();
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool valid_label_name(const std::string& s) {
  if (s.empty() || !(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  if (s.rfind("__", 0) == 0) return false;  // reserved for Prometheus itself
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_';
  });
}

bool valid_hostname(const std::string& s) {
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

// How many nodes the inventory has once every alias is expanded, counted from the parser's events
// without building anything: aliases cost nothing to load, but every part of siteprobe that walks the
// tree walks each expansion again ("billion laughs": 57 KB became 250,000 devices).
class ExpansionCounter final : public YAML::EventHandler {
 public:
  std::uint64_t literal = 0, expanded = 0;
  struct Alias {
    YAML::Mark mark;
    std::string name;
    std::uint64_t nodes = 0;
  } largest;  // the alias that expands most

  int documents = 0;
  YAML::Mark second_document;
  void OnDocumentStart(const YAML::Mark& m) override {
    if (++documents == 2) second_document = m;
  }
  void OnDocumentEnd() override {}
  void OnAnchor(const YAML::Mark&, const std::string& name) override { names_.push_back(name); }
  void OnNull(const YAML::Mark&, YAML::anchor_t a) override { leaf(a); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t a, const std::string&) override {
    leaf(a);
  }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t a) override {
    const auto it = sizes_.find(a);
    const std::uint64_t n = it == sizes_.end() ? 1 : it->second;
    ++literal;
    add(n);
    if (n > largest.nodes)
      largest = {m, a >= 1 && a <= names_.size() ? names_[a - 1] : "#" + std::to_string(a), n};
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t a,
                       YAML::EmitterStyle::value) override {
    open(a);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t a,
                  YAML::EmitterStyle::value) override {
    open(a);
  }
  void OnMapEnd() override { close(); }

 private:
  static constexpr std::uint64_t kSaturate = std::uint64_t{1} << 62;
  void leaf(YAML::anchor_t a) {
    ++literal;
    if (a) sizes_[a] = 1;
    add(1);
  }
  void open(YAML::anchor_t a) {
    ++literal;
    open_.push_back({a, 1});
  }
  void close() {
    const auto o = open_.back();
    open_.pop_back();
    if (o.first) sizes_[o.first] = o.second;
    add(o.second);
  }
  void add(std::uint64_t n) {
    std::uint64_t& into = open_.empty() ? expanded : open_.back().second;
    into = std::min(kSaturate, into + n);
  }
  std::vector<std::pair<YAML::anchor_t, std::uint64_t>> open_;  // anchor, expanded nodes so far
  std::map<YAML::anchor_t, std::uint64_t> sizes_;
  std::vector<std::string> names_;  // by anchor number - 1
};

// yaml-cpp's syntax error in an editor's terms, for the mistakes people make by hand ("" if none).
std::string syntax_hint(const std::string& text, const YAML::ParserException& e) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  const auto n = static_cast<std::size_t>(std::max(0, e.mark.line));
  const auto indent = [&](std::size_t i) {  // where the line's key starts: "  - id: x" -> 4
    const std::string& l = lines[i];
    std::size_t k = l.find_first_not_of(' ');
    while (k != std::string::npos && l.compare(k, 2, "- ") == 0) k = l.find_first_not_of(' ', k + 2);
    return k;
  };
  const auto content = [&](std::size_t i) {
    const std::size_t k = lines[i].find_first_not_of(' ');
    return k != std::string::npos && lines[i][k] != '#';
  };
  const auto previous = [&]() -> std::size_t {  // the content line above the error's, or npos
    for (std::size_t p = std::min(n, lines.size()); p-- > 0;)
      if (content(p)) return p;
    return std::string::npos;
  };
  const auto misindented = [&]() -> std::string {
    const std::size_t p = previous();
    if (n >= lines.size() || !content(n) || p == std::string::npos || indent(n) == indent(p)) return "";
    return " (line " + std::to_string(n + 1) + " is indented " + std::to_string(indent(n)) +
           " spaces; line " + std::to_string(p + 1) + " above it, " + std::to_string(indent(p)) +
           ": keys of one mapping line up)";
  };
  if (e.msg.find("illegal map value") != std::string::npos) {  // a deeper key, or a value with ": "
    if (auto h = misindented(); !h.empty()) return h;
    return " (a value containing \": \" must be quoted, e.g. name: \"Trung tâm: Bắc Kạn\")";
  }
  if (n < lines.size() && lines[n].find('\t') < lines[n].find_first_not_of(" \t"))
    return " (line " + std::to_string(n + 1) + " is indented with a tab: YAML indents with spaces only)";
  if (e.msg.find("unknown escape character") != std::string::npos)
    return " (in double quotes a backslash starts an escape: write \\\\, or use single quotes)";
  if (e.msg.find("flow not found") != std::string::npos) return " (a { or [ is not closed)";
  if (e.msg.find("not found") != std::string::npos) return misindented();
  return "";
}

class Parser {
 public:
  Parser(std::string name, std::string base_dir) : name_(std::move(name)), base_(std::move(base_dir)) {}

  LoadResult run(const std::string& text);
  void parse(const std::string& text);

 private:
  std::string name_, base_;
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
  ServiceOverride parse_service(const YAML::Node& n, const std::string& path, bool sip);
  std::optional<std::vector<TcpCheck>> parse_tcp(const YAML::Node& n, const std::string& path);
  void parse_call_blocks(const YAML::Node& n, const std::string& path, Overrides& o);
  void apply_call_blocks(const YAML::Node& n, const std::string& path, Device& d);
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
  bool resolve_snmp(const YAML::Node& n, const std::string& path, Device& d);
  std::set<std::string> snmp_reported_;
  void parse_device(const YAML::Node& n, const std::string& path, Site& site,
                    std::map<std::string, YAML::Mark>& names);
  void secret_too_short(const YAML::Node& a, const std::string& path, const std::string& key);
  struct SiteRef {
    std::string path;
    YAML::Mark site, parent, level;
  };
  void check_tree(const std::vector<SiteRef>& refs, const std::set<std::string>& all_ids);
};

IcmpOverride Parser::parse_icmp(const YAML::Node& n, const std::string& path) {
  IcmpOverride o;
  if (!check_map(n, path, {"interval", "timeout", "spacing", "packets", "payload_bytes", "rtt_buckets"}))
    return o;
  using namespace std::chrono;
  if (auto v = n["interval"]) o.interval = duration_of(v, path + ".interval", milliseconds(100), hours(1));
  if (auto v = n["timeout"]) o.timeout = duration_of(v, path + ".timeout", milliseconds(1), seconds(60));
  if (auto v = n["spacing"]) o.spacing = duration_of(v, path + ".spacing", milliseconds(1), seconds(60));
  if (auto v = n["packets"]) {
    if (auto i = int_of(v, path + ".packets", 1, 100)) o.packets = static_cast<int>(*i);
  }
  if (auto v = n["payload_bytes"]) {
    if (auto i = int_of(v, path + ".payload_bytes", 24, 1400)) o.payload_bytes = static_cast<int>(*i);
  }
  if (auto v = n["rtt_buckets"]) {
    const std::string bp = path + ".rtt_buckets";
    if (!v.IsSequence() || v.size() == 0 || v.size() > 40) {
      error(v.Mark(), bp, "must be a list of 1..40 bucket bounds in seconds");
    } else {
      std::vector<double> b;
      bool ok = true;
      for (std::size_t i = 0; i < v.size(); ++i) {
        auto x = number_of(v[i], bp + "[" + std::to_string(i) + "]", 0.000001, 3600);
        if (!x) {
          ok = false;
        } else if (!b.empty() && *x <= b.back()) {
          error(v[i].Mark(), bp + "[" + std::to_string(i) + "]", "bucket bounds must increase");
          ok = false;
        } else {
          b.push_back(*x);
        }
      }
      if (ok) o.rtt_buckets = b;
    }
  }
  return o;
}

std::optional<std::vector<std::string>> Parser::string_list(const YAML::Node& n, const std::string& path,
                                                            bool regex) {
  if (!n.IsSequence()) {
    error(n.Mark(), path, regex ? "must be a list of regular expressions" : "must be a list of names");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    auto s = string_of(n[i], p);
    if (!s) {
      ok = false;
      continue;
    }
    if (regex)
      if (auto e = NamePattern::error(*s)) {
        error(n[i].Mark(), p, "invalid regular expression \"" + *s + "\": " + *e + " (RE2 syntax)");
        ok = false;
      }
    out.push_back(*s);
  }
  if (!ok) return std::nullopt;
  return out;
}

SnmpOverride Parser::parse_snmp(const YAML::Node& n, const std::string& path) {
  SnmpOverride o;
  if (!check_map(n, path,
                 {"enabled", "auth", "port", "interval", "timeout", "retries", "max_repetitions",
                  "max_interfaces", "modules", "interfaces_include", "interfaces_exclude", "uplink"}))
    return o;
  using namespace std::chrono;
  if (auto v = n["enabled"]) {
    if (v.IsScalar() && (v.Scalar() == "true" || v.Scalar() == "false"))
      o.enabled = v.Scalar() == "true";
    else
      error(v.Mark(), path + ".enabled", "must be true or false");
  }
  if (auto v = n["auth"]) o.auth = string_of(v, path + ".auth");
  if (auto v = n["port"])
    if (auto i = int_of(v, path + ".port", 1, 65535)) o.port = static_cast<int>(*i);
  if (auto v = n["retries"])
    if (auto i = int_of(v, path + ".retries", 0, 10)) o.retries = static_cast<int>(*i);
  if (auto v = n["max_repetitions"])
    if (auto i = int_of(v, path + ".max_repetitions", 1, 200)) o.max_repetitions = static_cast<int>(*i);
  if (auto v = n["max_interfaces"])
    if (auto i = int_of(v, path + ".max_interfaces", 1, 65536)) o.max_interfaces = static_cast<int>(*i);
  if (auto v = n["interval"]) o.interval = duration_of(v, path + ".interval", seconds(1), hours(1));
  if (auto v = n["timeout"]) o.timeout = duration_of(v, path + ".timeout", milliseconds(10), seconds(60));
  if (auto v = n["modules"]) o.modules = string_list(v, path + ".modules", false);
  if (auto v = n["interfaces_include"]) o.include = string_list(v, path + ".interfaces_include", true);
  if (auto v = n["interfaces_exclude"]) o.exclude = string_list(v, path + ".interfaces_exclude", true);
  if (auto v = n["uplink"]) {
    if (auto s = string_of(v, path + ".uplink")) {
      if (auto e = NamePattern::error(*s))
        error(v.Mark(), path + ".uplink",
              "invalid regular expression \"" + *s + "\": " + *e + " (RE2 syntax)");
      else
        o.uplink = *s;
    }
  }
  return o;
}

void Parser::parse_snmp_modules(const YAML::Node& n) {
  if (!n.IsMap()) {
    error(n.Mark(), "snmp_modules", "must be a mapping of module name to a list of objects");
    return;
  }
  for (const auto& kv : n) {
    const std::string name = kv.first.Scalar();
    const std::string mp = "snmp_modules." + name;
    if (!valid_id(name) || name == "system" || name == "interfaces") {
      error(kv.first.Mark(), mp,
            "invalid module name (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*, not system or interfaces)");
      continue;
    }
    if (!kv.second.IsSequence() || kv.second.size() == 0) {
      error(kv.second.Mark(), mp, "must be a non-empty list of objects");
      continue;
    }
    std::vector<SnmpObject> objs;
    for (std::size_t i = 0; i < kv.second.size(); ++i) {
      const YAML::Node& o = kv.second[i];
      const std::string p = mp + "[" + std::to_string(i) + "]";
      if (!check_map(o, p, {"name", "oid", "type", "walk", "index_label", "help"})) continue;
      SnmpObject obj;
      bool ok = true;
      for (const char* req : {"name", "oid", "type"})
        if (!o[req]) {
          error(o.Mark(), p, std::string("missing required key \"") + req + "\"");
          ok = false;
        }
      if (auto v = o["type"]) {
        auto t = string_of(v, p + ".type");
        if (t && *t != "gauge" && *t != "counter" && *t != "info") {
          error(v.Mark(), p + ".type", "unknown type \"" + *t + "\" (allowed: gauge, counter, info)");
          ok = false;
        } else if (t) {
          obj.type = *t;
        } else {
          ok = false;
        }
      }
      if (auto v = o["name"]) {
        auto s = string_of(v, p + ".name");
        const bool valid = s && valid_label_name(*s) && s->find("__") == std::string::npos;
        if (!valid) {
          if (s)
            error(v.Mark(), p + ".name", "invalid metric name \"" + *s + "\" (allowed: [a-z_][a-z0-9_]*)");
          ok = false;
        } else if (snmp_builtin(*s)) {
          error(v.Mark(), p + ".name", "\"" + *s + "\" is a metric siteprobe exports itself");
          ok = false;
        } else if (obj.type == "counter" && !(s->size() > 6 && s->compare(s->size() - 6, 6, "_total") == 0)) {
          error(v.Mark(), p + ".name", "a counter's name must end in _total (Prometheus convention)");
          ok = false;
        } else if (obj.type == "info" && !(s->size() > 5 && s->compare(s->size() - 5, 5, "_info") == 0)) {
          error(v.Mark(), p + ".name", "an info metric's name must end in _info (Prometheus convention)");
          ok = false;
        } else {
          obj.name = *s;
        }
      }
      if (auto v = o["oid"]) {
        auto s = v.IsScalar() ? std::optional<std::string>(v.Scalar()) : std::nullopt;
        std::string t = s ? *s : "";
        if (!t.empty() && t[0] == '.') t.erase(0, 1);
        std::istringstream in(t);
        std::string part;
        while (!t.empty() && std::getline(in, part, '.')) {
          if (part.empty() || part.size() > 10 || !std::all_of(part.begin(), part.end(), ::isdigit) ||
              std::stoull(part) > 0xffffffffULL) {
            obj.oid.clear();
            break;
          }
          obj.oid.push_back(static_cast<std::uint32_t>(std::stoull(part)));
        }
        if (obj.oid.size() < 2 || obj.oid.size() > 128 || t.back() == '.') {
          error(v.Mark(), p + ".oid",
                "invalid OID \"" + t + "\" (allowed: numeric, e.g. 1.3.6.1.2.1.25.3.3.1.2)");
          ok = false;
        }
      }
      if (auto v = o["walk"]) {
        if (v.IsScalar() && (v.Scalar() == "true" || v.Scalar() == "false"))
          obj.walk = v.Scalar() == "true";
        else
          error(v.Mark(), p + ".walk", "must be true or false"), ok = false;
      }
      if (auto v = o["index_label"]) {
        auto s = string_of(v, p + ".index_label");
        if (!obj.walk) {
          error(v.Mark(), p + ".index_label", "only used with walk: true");
          ok = false;
        } else if (!s || !valid_label_name(*s) || kReservedLabels.count(*s) ||
                   std::find(cfg_.levels.begin(), cfg_.levels.end(), *s) != cfg_.levels.end()) {
          if (s)
            error(v.Mark(), p + ".index_label",
                  "invalid label name \"" + *s +
                      "\" (allowed: [a-z_][a-z0-9_]*, not a level or a label "
                      "siteprobe uses itself)");
          ok = false;
        } else {
          obj.index_label = *s;
        }
      } else if (obj.walk) {
        obj.index_label = "index";
      }
      if (auto v = o["help"])
        if (auto s = string_of(v, p + ".help")) obj.help = *s;
      if (ok) objs.push_back(std::move(obj));
    }
    cfg_.snmp_modules[name] = std::move(objs);
  }
}

Overrides Parser::parse_overrides(const YAML::Node& n, const std::string& path) {
  Overrides o;
  if (!check_map(n, path, {"icmp", "snmp", "sip", "h323", "tcp"})) return o;
  if (auto v = n["icmp"]) {
    o.icmp = parse_icmp(v, path + ".icmp");
    o.icmp_at = {{v.Mark(), path + ".icmp"}};
  }
  if (auto v = n["snmp"]) {
    o.snmp = parse_snmp(v, path + ".snmp");
    o.snmp_at = {{v.Mark(), path + ".snmp"}};
  }
  parse_call_blocks(n, path, o);
  return o;
}

ServiceOverride Parser::parse_service(const YAML::Node& n, const std::string& path, bool sip) {
  ServiceOverride o;
  o.at = {{n.Mark(), path}};
  std::vector<std::string> keys = {"enabled", "port", "interval", "timeout"};
  if (sip) keys.insert(keys.begin() + 1, "transport");
  if (!check_map(n, path, keys)) return o;
  using namespace std::chrono;
  if (auto v = n["enabled"]) o.enabled = bool_of(v, path + ".enabled");
  if (auto v = n["transport"]; v && sip) {
    auto t = string_of(v, path + ".transport");
    if (t && *t != "udp" && *t != "tcp")
      error(v.Mark(), path + ".transport", "unknown transport \"" + *t + "\" (allowed: udp, tcp)");
    else if (t)
      o.transport = *t;
  }
  if (auto v = n["port"]) {
    if (auto i = int_of(v, path + ".port", 1, 65535)) o.port = static_cast<int>(*i);
  }
  if (auto v = n["interval"]) o.interval = duration_of(v, path + ".interval", seconds(1), hours(1));
  if (auto v = n["timeout"]) o.timeout = duration_of(v, path + ".timeout", milliseconds(10), seconds(60));
  return o;
}

std::optional<std::vector<TcpCheck>> Parser::parse_tcp(const YAML::Node& n, const std::string& path) {
  if (!n.IsSequence()) {
    error(n.Mark(), path, "must be a list of checks like {name: https, port: 443}");
    return std::nullopt;
  }
  std::vector<TcpCheck> out;
  std::set<std::string> names;
  bool all_ok = true;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& e = n[i];
    const std::string p = path + "[" + std::to_string(i) + "]";
    bool ok = check_map(e, p, {"name", "port", "interval", "timeout"});
    all_ok = all_ok && ok;
    if (!ok) continue;
    TcpCheck c;
    for (const char* req : {"name", "port"})
      if (!e[req]) {
        error(e.Mark(), p, std::string("missing required key \"") + req + "\"");
        ok = false;
      }
    if (auto v = e["name"]) {
      auto x = string_of(v, p + ".name");
      if (x && (!valid_id(*x) || *x == "h323" || *x == "sip")) {
        error(v.Mark(), p + ".name",
              "invalid check name \"" + *x + "\" (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*, not h323 or sip)");
        ok = false;
      } else if (x && !names.insert(*x).second) {
        error(v.Mark(), p + ".name", "duplicate check name \"" + *x + "\"");
        ok = false;
      } else if (x) {
        c.name = *x;
      }
    }
    if (auto v = e["port"]) {
      auto x = int_of(v, p + ".port", 1, 65535);
      ok = ok && x;
      if (x) c.port = static_cast<int>(*x);
    }
    using namespace std::chrono;
    if (auto v = e["interval"]) {
      auto x = duration_of(v, p + ".interval", seconds(1), hours(1));
      ok = ok && x;
      if (x) c.interval = *x;
    }
    if (auto v = e["timeout"]) {
      auto x = duration_of(v, p + ".timeout", milliseconds(10), seconds(60));
      ok = ok && x;
      if (x) c.timeout = *x;
    }
    if (ok && c.timeout > c.interval) {
      error(e.Mark(), p,
            "timeout " + format_duration(c.timeout) + " exceeds interval " + format_duration(c.interval));
      ok = false;
    }
    all_ok = all_ok && ok;
    out.push_back(c);
  }
  if (!all_ok) return std::nullopt;
  return out;
}

void Parser::parse_call_blocks(const YAML::Node& n, const std::string& path, Overrides& o) {
  if (auto v = n["sip"]) o.sip = parse_service(v, path + ".sip", true);
  if (auto v = n["h323"]) o.h323 = parse_service(v, path + ".h323", false);
  if (auto v = n["tcp"]) o.tcp = parse_tcp(v, path + ".tcp");
}

// Layers the sip, h323 and tcp blocks (built-in < defaults < role < profile < device) into `d`,
// whose role and profile are known. A timeout longer than the interval is reported once, at the
// most specific block that sets the service.
void Parser::apply_call_blocks(const YAML::Node& n, const std::string& path, Device& d) {
  Overrides own;
  parse_call_blocks(n, path, own);
  std::vector<const Overrides*> layers = {&defaults_block_};
  if (roles_.count(d.role)) layers.push_back(&roles_.at(d.role));
  if (profiles_.count(d.profile)) layers.push_back(&profiles_.at(d.profile));
  layers.push_back(&own);
  d.sip.enabled = d.h323.enabled = d.role == "vc_endpoint" || d.role == "mcu";
  const auto layer = [&](auto& settings, ServiceOverride Overrides::*block, const char* name) {
    std::pair<YAML::Mark, std::string> culprit{n.Mark(), path};
    for (const Overrides* l : layers) {
      (l->*block).apply_to(settings);
      if ((l->*block).at) culprit = *(l->*block).at;
    }
    if (settings.timeout > settings.interval && round_reported_.insert(culprit.second).second)
      error(culprit.first, culprit.second,
            std::string(name) + " timeout " + format_duration(settings.timeout) + " exceeds interval " +
                format_duration(settings.interval) + " (lower timeout or raise interval)");
  };
  layer(d.sip, &Overrides::sip, "sip");
  layer(d.h323, &Overrides::h323, "h323");
  for (const Overrides* l : layers)
    if (l->tcp) d.tcp = *l->tcp;
}

void Parser::parse_levels(const YAML::Node& n) {
  if (!n.IsSequence() || n.size() < 1 || n.size() > 6) {
    error(n.Mark(), "levels", "must be a list of 1..6 level names, top level first");
    levels_ok_ = false;
    return;
  }
  std::vector<std::string> levels;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string p = "levels[" + std::to_string(i) + "]";
    auto s = string_of(n[i], p);
    if (!s) continue;
    if (!valid_label_name(*s) || kReservedLabels.count(*s)) {
      error(n[i].Mark(), p,
            "invalid level name \"" + *s +
                "\" (allowed: lowercase [a-z_][a-z0-9_]*, not a label siteprobe uses itself)");
    } else if (std::find(levels.begin(), levels.end(), *s) != levels.end()) {
      error(n[i].Mark(), p, "duplicate level \"" + *s + "\"");
    } else {
      levels.push_back(*s);
    }
  }
  if (levels.size() == n.size())
    cfg_.levels = levels;
  else
    levels_ok_ = false;
}

void Parser::parse_global(const YAML::Node& n) {
  if (!check_map(n, "global",
                 {"dns_refresh", "icmp_max_packets_per_second", "snmp_max_inflight", "max_devices"}))
    return;
  if (auto v = n["max_devices"])
    if (auto i = int_of(v, "global.max_devices", 1, 10000000)) cfg_.max_devices = static_cast<int>(*i);
  if (auto v = n["snmp_max_inflight"])
    if (auto i = int_of(v, "global.snmp_max_inflight", 1, 4096))
      cfg_.snmp_max_inflight = static_cast<int>(*i);
  using namespace std::chrono;
  if (auto v = n["dns_refresh"])
    if (auto d = duration_of(v, "global.dns_refresh", seconds(10), hours(24))) cfg_.dns_refresh = *d;
  if (auto v = n["icmp_max_packets_per_second"])
    if (auto d = number_of(v, "global.icmp_max_packets_per_second", 10, 1e6))
      cfg_.icmp_max_packets_per_second = *d;
}

void Parser::parse_site_state(const YAML::Node& n) {
  if (!check_map(n, "site_state",
                 {"down_after", "up_after", "window", "degraded_loss", "degraded_rtt", "reachability_roles"}))
    return;
  auto& st = cfg_.site_state;
  for (auto [key, into] :
       {std::pair{"down_after", &st.down_after}, {"up_after", &st.up_after}, {"window", &st.window}})
    if (auto v = n[key])
      if (auto i = int_of(v, std::string("site_state.") + key, 1, 100)) *into = static_cast<int>(*i);
  if (auto v = n["degraded_loss"])
    if (auto d = number_of(v, "site_state.degraded_loss", 0, 1)) st.degraded_loss = *d;
  if (auto v = n["degraded_rtt"])
    if (auto d =
            duration_of(v, "site_state.degraded_rtt", std::chrono::milliseconds(1), std::chrono::seconds(60)))
      st.degraded_rtt = *d;
  if (auto v = n["reachability_roles"]) {
    if (!v.IsSequence() || v.size() == 0) {
      error(v.Mark(), "site_state.reachability_roles", "must be a non-empty list of roles");
    } else {
      st.reachability_roles.clear();
      for (std::size_t i = 0; i < v.size(); ++i)
        if (auto r = string_of(v[i], "site_state.reachability_roles[" + std::to_string(i) + "]"))
          st.reachability_roles.push_back(*r);
    }
  }
}

std::optional<std::string> Parser::secret_of(const YAML::Node& parent, const std::string& key,
                                             const std::string& path) {
  const auto inline_node = parent[key];
  const auto file_node = parent[key + "_file"];
  if (inline_node && file_node) {
    error(file_node.Mark(), path + "." + key + "_file",
          "give either " + key + " or " + key + "_file, not both");
    return std::nullopt;
  }
  if (inline_node) return string_of(inline_node, path + "." + key);
  if (!file_node) return std::nullopt;
  auto fname = string_of(file_node, path + "." + key + "_file");
  if (!fname) return std::nullopt;
  std::string full = (!fname->empty() && (*fname)[0] == '/') ? *fname : base_ + "/" + *fname;
  std::string secret;
  FILE* f = std::fopen(full.c_str(), "r");
  int err = f ? 0 : errno;
  if (f) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && secret.size() < 65536) secret.append(buf, n);
    if (std::ferror(f)) err = errno ? errno : EIO;
    std::fclose(f);
  }
  if (err) {
    error(file_node.Mark(), path + "." + key + "_file",
          "cannot read secret file \"" + *fname + "\" (" + std::strerror(err) + ")");
    return std::nullopt;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    error(file_node.Mark(), path + "." + key + "_file", "secret file \"" + *fname + "\" is empty");
    return std::nullopt;
  }
  return secret;
}

void Parser::parse_auth(const YAML::Node& n) {
  if (!n.IsMap()) {
    error(n.Mark(), "auth", "must be a mapping of profile name to SNMP credentials");
    return;
  }
  for (const auto& kv : n) {
    const std::string name = kv.first.Scalar();
    const std::string path = "auth." + name;
    const YAML::Node& a = kv.second;
    if (!valid_id(name))
      error(kv.first.Mark(), path, "invalid profile name (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)");
    if (!check_map(a, path,
                   {"version", "community", "community_file", "username", "security_level", "auth_protocol",
                    "auth_passphrase", "auth_passphrase_file", "priv_protocol", "priv_passphrase",
                    "priv_passphrase_file"}))
      continue;
    AuthProfile p;
    p.name = name;
    auto version =
        a["version"] ? string_of(a["version"], path + ".version") : std::optional<std::string>("2c");
    if (version && *version != "1" && *version != "2c" && *version != "3") {
      error(a["version"].Mark(), path + ".version",
            "unknown SNMP version \"" + *version + "\" (allowed: 1, 2c, 3)");
      continue;
    }
    if (!version) continue;
    p.version = *version;
    const auto not_for = [&](const std::vector<const char*>& keys, const std::string& why) {
      for (const char* k : keys)
        if (a[k]) error(a[k].Mark(), path + "." + k, why);
    };
    if (p.version != "3")
      not_for({"username", "security_level", "auth_protocol", "auth_passphrase", "auth_passphrase_file",
               "priv_protocol", "priv_passphrase", "priv_passphrase_file"},
              "only used with SNMP version 3 (this profile is version " + p.version + ")");
    else
      not_for({"community", "community_file"},
              "only used with SNMP version 1 and 2c (this profile is version 3)");
    if (p.version != "3") {
      auto c = secret_of(a, "community", path);
      if (c && c->empty())
        error(a["community"].Mark(), path + ".community", "must not be empty");
      else if (c)
        p.community = *c;
      else if (!a["community"] && !a["community_file"])
        error(a.Mark(), path, "SNMP v" + p.version + " needs community or community_file");
    } else {
      if (auto u = a["username"] ? string_of(a["username"], path + ".username") : std::nullopt)
        p.username = *u;
      else if (!a["username"])
        error(a.Mark(), path, "SNMPv3 needs username");
      p.security_level = "authPriv";
      if (auto v = a["security_level"]) {
        auto s = string_of(v, path + ".security_level");
        if (s && *s != "noAuthNoPriv" && *s != "authNoPriv" && *s != "authPriv") {
          error(v.Mark(), path + ".security_level",
                "unknown security level \"" + *s + "\" (allowed: noAuthNoPriv, authNoPriv, authPriv)");
          continue;
        }
        if (!s) continue;
        p.security_level = *s;
      }
      const bool need_auth = p.security_level != "noAuthNoPriv";
      const bool need_priv = p.security_level == "authPriv";
      if (!need_auth)
        not_for({"auth_protocol", "auth_passphrase", "auth_passphrase_file"},
                "not used with security_level " + p.security_level);
      if (!need_priv)
        not_for({"priv_protocol", "priv_passphrase", "priv_passphrase_file"},
                "not used with security_level " + p.security_level);
      const auto check_proto = [&](const std::string& key, const std::vector<std::string>& allowed,
                                   std::string& out, const std::string& dflt) {
        out = dflt;
        if (auto v = a[key]) {
          auto s = string_of(v, path + "." + key);
          if (!s) return;
          if (std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
            std::string list;
            for (const auto& x : allowed) list += (list.empty() ? "" : ", ") + x;
            error(v.Mark(), path + "." + key, "unknown protocol \"" + *s + "\" (allowed: " + list + ")");
          } else {
            out = *s;
          }
        }
      };
      check_proto("auth_protocol", {"MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"},
                  p.auth_protocol, "SHA");
      check_proto("priv_protocol", {"DES", "AES", "AES-192", "AES-256"}, p.priv_protocol, "AES");
      if (need_auth) {
        if (auto s = secret_of(a, "auth_passphrase", path)) {
          if (s->size() < 8) secret_too_short(a, path, "auth_passphrase");
          p.auth_passphrase = *s;
        } else if (!a["auth_passphrase"] && !a["auth_passphrase_file"]) {
          error(a.Mark(), path,
                "security_level " + p.security_level + " needs auth_passphrase or auth_passphrase_file");
        }
      }
      if (need_priv) {
        if (auto s = secret_of(a, "priv_passphrase", path)) {
          if (s->size() < 8) secret_too_short(a, path, "priv_passphrase");
          p.priv_passphrase = *s;
        } else if (!a["priv_passphrase"] && !a["priv_passphrase_file"]) {
          error(a.Mark(), path, "security_level authPriv needs priv_passphrase or priv_passphrase_file");
        }
      }
    }
    p.inline_secret = a["community"] || a["auth_passphrase"] || a["priv_passphrase"];
    cfg_.auth[name] = p;
  }
}

// A passphrase under 8 characters (net-snmp and RFC 3414 refuse it), reported at the key that gave
// it: the inline value or its _file.
void Parser::secret_too_short(const YAML::Node& a, const std::string& path, const std::string& key) {
  const std::string k = a[key] ? key : key + "_file";
  error(a[k].Mark(), path + "." + k, "must be at least 8 characters (RFC 3414)");
}

void Parser::parse_device(const YAML::Node& n, const std::string& path, Site& site,
                          std::map<std::string, YAML::Mark>& names) {
  if (!check_map(
          n, path,
          {"name", "address", "role", "profile", "reachability", "icmp", "snmp", "sip", "h323", "tcp"}))
    return;
  Device d;
  bool ok = true;
  for (const char* req : {"name", "address", "role"})
    if (!n[req]) {
      error(n.Mark(), path, std::string("missing required key \"") + req + "\"");
      ok = false;
    }
  if (auto v = n["name"]) {
    if (auto s = string_of(v, path + ".name")) {
      d.name = *s;
      if (!valid_id(*s)) {
        error(v.Mark(), path + ".name",
              "invalid device name \"" + *s + "\" (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64)");
        ok = false;
      } else if (auto [it, fresh] = names.emplace(*s, v.Mark()); !fresh) {
        error(v.Mark(), path + ".name",
              "duplicate device name \"" + *s + "\" in site \"" + site.id + "\" (first at " +
                  where(it->second) + ")");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (auto v = n["address"]) {
    if (auto s = string_of(v, path + ".address")) {
      d.address = *s;
      unsigned char buf[16];
      bool valid;
      if (s->find(':') != std::string::npos) {
        valid = inet_pton(AF_INET6, s->c_str(), buf) == 1;
        static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (valid &&
            std::memcmp(buf, kMapped, 12) == 0) {  // ::ffff:a.b.c.d goes out as IPv6, and no one answers
          char v4[INET_ADDRSTRLEN] = "";
          inet_ntop(AF_INET, buf + 12, v4, sizeof v4);
          error(v.Mark(), path + ".address",
                "IPv4-mapped IPv6 address \"" + *s + "\" is never answered; write the IPv4 address " + v4);
          ok = false;
          valid = true;  // reported
        }
      } else if (!s->empty() && std::all_of(s->begin(), s->end(), [](char c) {
                   return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
                 }))
        valid = inet_pton(AF_INET, s->c_str(), buf) == 1;
      else
        valid = valid_hostname(*s);
      if (!valid) {
        error(v.Mark(), path + ".address",
              "invalid address \"" + *s + "\" (allowed: IPv4, IPv6 or DNS name)");
        ok = false;
      } else if (auto [it, fresh] = addresses_.emplace(*s, std::make_pair(v.Mark(), site.id + "/" + d.name));
                 !fresh) {
        // Allowed (two names for one box, e.g. a router and its built-in codec), but often a copy-paste slip.
        warn(v.Mark(), path + ".address",
             "address " + *s + " is also device " + it->second.second + " (" + where(it->second.first) +
                 "); fine if both are the same box");
      }
    } else {
      ok = false;
    }
  }
  if (auto v = n["role"]) {
    if (auto s = string_of(v, path + ".role")) {
      d.role = *s;
      if (!kBuiltinRoles.count(*s) && !roles_.count(*s)) {
        std::string list;
        for (const auto& r : kBuiltinRoles) list += (list.empty() ? "" : ", ") + r;
        error(v.Mark(), path + ".role",
              "unknown role \"" + *s + "\" (allowed: " + list + ", or one defined under roles)");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  IcmpSettings eff = defaults_;
  if (ok && roles_.count(d.role)) roles_.at(d.role).icmp.apply_to(eff);
  if (auto v = n["profile"]) {
    if (auto s = string_of(v, path + ".profile")) {
      d.profile = *s;
      if (!profiles_.count(*s)) {
        error(v.Mark(), path + ".profile", "unknown profile \"" + *s + "\" (define it under profiles)");
        ok = false;
      } else {
        profiles_.at(*s).icmp.apply_to(eff);
      }
    }
  }
  // The most specific block that sets ICMP settings is where a bad combination is reported.
  std::pair<YAML::Mark, std::string> culprit{n.Mark(), path};
  if (defaults_block_.icmp_at) culprit = *defaults_block_.icmp_at;
  if (roles_.count(d.role) && roles_.at(d.role).icmp_at) culprit = *roles_.at(d.role).icmp_at;
  if (profiles_.count(d.profile) && profiles_.at(d.profile).icmp_at)
    culprit = *profiles_.at(d.profile).icmp_at;
  if (auto v = n["icmp"]) {
    parse_icmp(v, path + ".icmp").apply_to(eff);
    culprit = {v.Mark(), path + ".icmp"};
  }
  const Duration round = eff.spacing * (eff.packets - 1) + eff.timeout;
  if (round > eff.interval) {
    if (round_reported_.insert(culprit.second).second)
      error(culprit.first, culprit.second,
            "a round of packets does not fit in the interval: (packets-1)*spacing + timeout = " +
                format_duration(round) + " > interval " + format_duration(eff.interval) +
                " (lower packets, spacing or timeout, or raise interval)");
    ok = false;
  }
  d.icmp = eff;
  if (!resolve_snmp(n, path, d)) ok = false;
  apply_call_blocks(n, path, d);
  const auto& rr = cfg_.site_state.reachability_roles;
  d.reachability = std::find(rr.begin(), rr.end(), d.role) != rr.end();
  if (auto v = n["reachability"]) {
    if (v.IsScalar() && (v.Scalar() == "true" || v.Scalar() == "false"))
      d.reachability = v.Scalar() == "true";
    else
      error(v.Mark(), path + ".reachability", "must be true or false");
  }
  if (ok) site.devices.push_back(std::move(d));
}

// The device's effective SNMP settings; cross-references are checked where they were set.
bool Parser::resolve_snmp(const YAML::Node& n, const std::string& path, Device& d) {
  SnmpSettings eff;
  bool on = true;
  BlockAt culprit;
  const auto layer = [&](const Overrides* o) {
    if (!o) return;
    o->snmp.apply_to(eff, on);
    if (o->snmp_at) culprit = o->snmp_at;
  };
  layer(&defaults_block_);
  layer(roles_.count(d.role) ? &roles_.at(d.role) : nullptr);
  layer(profiles_.count(d.profile) ? &profiles_.at(d.profile) : nullptr);
  if (auto v = n["snmp"]) {
    bool dev_on = on;
    parse_snmp(v, path + ".snmp").apply_to(eff, dev_on);
    on = dev_on;
    culprit = {{v.Mark(), path + ".snmp"}};
  }
  if (!on || !culprit) return true;
  if (eff.auth.empty()) {
    // A block without auth (e.g. only a port in defaults) leaves SNMP off for devices without one.
    return true;
  }
  std::vector<std::string> problems;
  if (!cfg_.auth.count(eff.auth))
    problems.push_back("unknown auth profile \"" + eff.auth + "\" (define it under auth)");
  if (eff.modules.empty())
    problems.push_back(
        "modules is empty: nothing to poll (allowed: system, interfaces, or one under snmp_modules)");
  for (const auto& m : eff.modules)
    if (m != "system" && m != "interfaces" && !cfg_.snmp_modules.count(m))
      problems.push_back("unknown SNMP module \"" + m +
                         "\" (allowed: system, interfaces, or one under snmp_modules)");
  if (eff.timeout * (eff.retries + 1) >= eff.interval)
    problems.push_back("timeout * (retries + 1) = " + format_duration(eff.timeout * (eff.retries + 1)) +
                       " must be below interval " + format_duration(eff.interval));
  for (const auto& p : problems)
    if (snmp_reported_.insert(culprit->second + p).second) error(culprit->first, culprit->second, p);
  if (!problems.empty()) return false;
  d.snmp = eff;
  return true;
}

void Parser::parse_sites(const YAML::Node& n) {
  if (!n.IsSequence()) {
    error(n.Mark(), "sites", "must be a list of sites");
    return;
  }
  std::vector<SiteRef> refs;
  std::map<std::string, YAML::Mark> ids;
  std::set<std::string> all_ids;  // all_ids includes sites rejected for other errors
  for (std::size_t i = 0; i < n.size(); ++i)
    if (n[i].IsMap() && n[i]["id"] && n[i]["id"].IsScalar()) all_ids.insert(n[i]["id"].Scalar());
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& s = n[i];
    const std::string path = "sites[" + std::to_string(i) + "]";
    if (!check_map(s, path, {"id", "name", "level", "parent", "lat", "lon", "labels", "devices"})) continue;
    Site site;
    SiteRef ref{path, s.Mark(), s.Mark(), s.Mark()};
    bool ok = true;
    for (const char* req : {"id", "name", "level"})
      if (!s[req]) {
        error(s.Mark(), path, std::string("missing required key \"") + req + "\"");
        ok = false;
      }
    if (auto v = s["id"]) {
      if (auto x = string_of(v, path + ".id")) {
        site.id = *x;
        if (!valid_id(*x)) {
          error(v.Mark(), path + ".id",
                "invalid site id \"" + *x + "\" (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64)");
          ok = false;
        } else if (auto [it, fresh] = ids.emplace(*x, v.Mark()); !fresh) {
          error(v.Mark(), path + ".id",
                "duplicate site id \"" + *x + "\" (first at " + where(it->second) + ")");
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    if (auto v = s["name"]) {
      if (auto x = string_of(v, path + ".name")) {
        site.name = *x;
        if (x->empty()) error(v.Mark(), path + ".name", "must not be empty");
      }
      ok = ok && !site.name.empty();
    }
    if (auto v = s["level"]) {
      ref.level = v.Mark();
      if (auto x = string_of(v, path + ".level")) {
        auto it = std::find(cfg_.levels.begin(), cfg_.levels.end(), *x);
        if (it == cfg_.levels.end()) {
          std::string list;
          for (const auto& l : cfg_.levels) list += (list.empty() ? "" : ", ") + l;
          if (levels_ok_)  // with a broken levels list every level would look unknown
            error(v.Mark(), path + ".level", "unknown level \"" + *x + "\" (allowed: " + list + ")");
          ok = false;
        } else {
          site.level = *x;
          site.level_index = static_cast<std::size_t>(it - cfg_.levels.begin());
        }
      } else {
        ok = false;
      }
    }
    if (auto v = s["parent"]) {
      ref.parent = v.Mark();
      if (auto x = string_of(v, path + ".parent"))
        site.parent = *x;
      else
        ok = false;
    }
    if (auto v = s["lat"]) site.lat = number_of(v, path + ".lat", -90, 90);
    if (auto v = s["lon"]) site.lon = number_of(v, path + ".lon", -180, 180);
    if (s["lat"].IsDefined() != s["lon"].IsDefined())
      error(s.Mark(), path, "give both lat and lon, or neither");
    if (auto v = s["labels"]) {
      if (!v.IsMap()) {
        error(v.Mark(), path + ".labels", "must be a mapping of label name to value");
      } else {
        for (const auto& kv : v) {
          const std::string k = kv.first.Scalar();
          const std::string lp = path + ".labels." + k;
          if (!valid_label_name(k) || kReservedLabels.count(k) ||
              std::find(cfg_.levels.begin(), cfg_.levels.end(), k) != cfg_.levels.end()) {
            error(kv.first.Mark(), lp,
                  "invalid label name (allowed: [a-z_][a-z0-9_]*, not a level or a label siteprobe uses "
                  "itself)");
          } else if (auto x = string_of(kv.second, lp)) {
            if (!site.labels.emplace(k, *x).second) error(kv.first.Mark(), lp, "duplicate key");
          }
        }
      }
    }
    if (auto v = s["devices"]) {
      if (!v.IsSequence()) {
        error(v.Mark(), path + ".devices", "must be a list of devices");
      } else {
        std::map<std::string, YAML::Mark> names;
        for (std::size_t j = 0; j < v.size(); ++j) {
          if (++devices_seen_ > static_cast<std::size_t>(cfg_.max_devices)) {
            error(v[j].Mark(), path + ".devices[" + std::to_string(j) + "]",
                  "more than " + std::to_string(cfg_.max_devices) +
                      " devices (global.max_devices; raise it if the network is that large)");
            return;  // one error, not one per device beyond the cap
          }
          parse_device(v[j], path + ".devices[" + std::to_string(j) + "]", site, names);
        }
      }
    }
    if (ok) {
      cfg_.sites.push_back(std::move(site));
      refs.push_back(ref);
    }
  }
  check_tree(refs, all_ids);
}

// Parents exist, levels descend, no cycles; then fill each site's chain of level ids.
void Parser::check_tree(const std::vector<SiteRef>& refs, const std::set<std::string>& all_ids) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < cfg_.sites.size(); ++i) index[cfg_.sites[i].id] = i;
  bool tree_ok = true;
  for (std::size_t i = 0; i < cfg_.sites.size(); ++i) {
    const Site& s = cfg_.sites[i];
    const SiteRef& ref = refs[i];
    if (s.parent.empty()) {
      if (s.level_index != 0) {
        error(ref.site, ref.path,
              "missing parent (only top-level \"" + cfg_.levels[0] + "\" sites have no parent)");
        tree_ok = false;
      }
      continue;
    }
    auto it = index.find(s.parent);
    if (it == index.end()) {
      // A parent that exists but was rejected for its own errors has already been reported.
      if (!all_ids.count(s.parent))
        error(ref.parent, ref.path + ".parent", "unknown parent \"" + s.parent + "\" (no site has this id)");
      tree_ok = false;
      continue;
    }
    const Site& p = cfg_.sites[it->second];
    if (p.level_index >= s.level_index) {
      error(ref.level, ref.path + ".level",
            "level \"" + s.level + "\" does not descend from parent \"" + p.id + "\" at level \"" + p.level +
                "\" (a child's level must come after its parent's in levels)");
      tree_ok = false;
    }
  }
  // Cycle check independent of levels: follow parents, at most N steps.
  for (std::size_t i = 0; i < cfg_.sites.size(); ++i) {
    std::vector<std::string> chain = {cfg_.sites[i].id};
    std::string cur = cfg_.sites[i].parent;
    while (!cur.empty() && index.count(cur) && chain.size() <= cfg_.sites.size()) {
      chain.push_back(cur);
      if (cur == cfg_.sites[i].id) {
        std::string c;
        for (const auto& x : chain) c += (c.empty() ? "" : " -> ") + x;
        error(refs[i].parent, refs[i].path + ".parent", "parent chain forms a cycle: " + c);
        tree_ok = false;
        break;
      }
      cur = cfg_.sites[index[cur]].parent;
    }
  }
  if (!tree_ok) return;
  for (auto& s : cfg_.sites) {
    s.chain.assign(cfg_.levels.size(), "");
    for (const Site* cur = &s;; cur = &cfg_.sites[index[cur->parent]]) {
      s.chain[cur->level_index] = cur->id;
      if (cur->parent.empty()) break;
    }
  }
}

LoadResult Parser::run(const std::string& text) {
  try {
    parse(text);
  } catch (const YAML::ParserException& e) {
    error(e.mark, "(yaml)", "syntax error: " + e.msg + syntax_hint(text, e));
  } catch (const std::exception& e) {  // a conversion we did not foresee: still an error, not a crash
    error(YAML::Mark::null_mark(), "(inventory)", std::string("cannot be read: ") + e.what());
  }
  std::stable_sort(found_.begin(), found_.end(), [](const Error& a, const Error& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  LoadResult r;
  for (auto& e : found_) r.errors.push_back(std::move(e.text));
  r.warnings = std::move(warnings_);
  if (r.errors.empty()) r.config = std::make_shared<const Config>(std::move(cfg_));
  return r;
}

bool Parser::check_text(const std::string& text) {
  // UTF-8 only: a name saved as Windows-1258 or TCVN3 would pass YAML, then be exported as a label
  // value Prometheus rejects, and every scrape of siteprobe would fail. One error per line.
  std::size_t bad_lines = 0;
  YAML::Mark at;
  at.line = 0;
  at.column = 0;
  int reported_line = -1;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = text::sequence(std::string_view(text).substr(i));
    if (len == 0 && reported_line != at.line) {
      reported_line = at.line;
      if (++bad_lines <= 20) {
        char b[8];
        std::snprintf(b, sizeof b, "0x%02X", static_cast<unsigned char>(text[i]));
        error(at, "(encoding)",
              std::string("invalid UTF-8 (byte ") + b +
                  "): the file looks like Windows-1258 or TCVN3; save it as UTF-8 (e.g. iconv -f "
                  "WINDOWS-1258 -t UTF-8)");
      }
    }
    if (text[i] == '\n') {
      ++at.line;
      at.column = 0;
    } else {
      ++at.column;
    }
    i += len ? len : 1;
  }
  if (bad_lines > 20)
    error(YAML::Mark::null_mark(), "(encoding)",
          std::to_string(bad_lines - 20) + " more lines with invalid UTF-8");
  if (bad_lines) return false;

  std::istringstream in(text);
  YAML::Parser events(in);
  ExpansionCounter count;
  // Two documents at most: past the first, only whether there is another matters, and yaml-cpp's
  // HandleNextDocument can return true for ever on some broken input (found by fuzz_config).
  for (int k = 0; k < 2 && events.HandleNextDocument(count); ++k) {
  }
  const bool marker = text.rfind("---", 0) == 0 || text.find("\n---") != std::string::npos ||
                      text.find("\n...") != std::string::npos;
  if (count.documents > 1 && marker) {  // yaml-cpp's Load would read the first and drop the rest unseen
    error(count.second_document, "(yaml)",
          "a second YAML document (after a --- line): an inventory is one document; remove the --- "
          "line or move the rest into the first document");
    return false;
  }
  const std::uint64_t limit = std::max<std::uint64_t>(kMaxExpandedNodes, kMaxExpansion * count.literal);
  if (count.expanded > limit) {
    error(count.largest.mark, "(aliases)",
          "alias *" + count.largest.name + " expands to " + std::to_string(count.largest.nodes) +
              " nodes, and with it the inventory to " + std::to_string(count.expanded) + " (limit " +
              std::to_string(limit) + ", or " + std::to_string(kMaxExpansion) +
              " times the nodes written out); write the repeated parts out, or share settings with profiles");
    return false;
  }
  return true;
}

void Parser::parse(const std::string& text) {
  text_ = text;
  if (!check_text(text)) return;
  const YAML::Node root = YAML::Load(text);
  if (!check_map(root, "",
                 {"levels", "global", "site_state", "readiness", "defaults", "roles", "profiles", "auth",
                  "snmp_modules", "sites"}))
    return;
  cfg_.file = name_;
  if (auto n = root["levels"]) parse_levels(n);
  if (auto n = root["global"]) parse_global(n);
  if (auto n = root["site_state"]) parse_site_state(n);
  if (auto n = root["readiness"]; n && check_map(n, "readiness", {"min_mos"})) {
    if (auto v = n["min_mos"])
      if (auto x = number_of(v, "readiness.min_mos", 1, 4.5)) cfg_.readiness_min_mos = *x;
  }
  if (auto n = root["defaults"]) {
    defaults_block_ = parse_overrides(n, "defaults");
    defaults_block_.icmp.apply_to(defaults_);
  }
  for (const char* block : {"roles", "profiles"}) {
    auto n = root[block];
    if (!n) continue;
    auto& into = std::string(block) == "roles" ? roles_ : profiles_;
    if (!n.IsMap()) {
      error(n.Mark(), block, "must be a mapping of name to settings");
      continue;
    }
    for (const auto& kv : n) {
      const std::string name = kv.first.Scalar();
      if (!valid_id(name))
        error(kv.first.Mark(), std::string(block) + "." + name,
              "invalid name (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)");
      into[name] = parse_overrides(kv.second, std::string(block) + "." + name);
    }
  }
  if (auto n = root["auth"]) parse_auth(n);
  if (auto n = root["snmp_modules"]) parse_snmp_modules(n);
  if (auto n = root["sites"]) {
    if (n.IsSequence() && n.size() == 0) error(n.Mark(), "sites", "must list at least one site");
    parse_sites(n);
  } else {
    error(root.Mark(), "sites", "missing required key \"sites\"");
  }
}

}  // namespace

std::size_t Config::device_count() const {
  std::size_t n = 0;
  for (const auto& s : sites) n += s.devices.size();
  return n;
}

std::optional<Duration> parse_duration(const std::string& s) {
  // Units in decreasing order, each at most once ("1h30m", not "30m1h" or "1h1h"); at most 9
  // digits per part and 10000h in total, so nothing overflows.
  static const std::pair<const char*, std::int64_t> kUnits[] = {
      {"h", 3600000000000}, {"m", 60000000000}, {"s", 1000000000}, {"ms", 1000000}};
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0, next_unit = 0;
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i || j - i > 9) return std::nullopt;
    const std::int64_t v = std::stoll(s.substr(i, j - i));
    std::size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    const std::string unit = s.substr(j, k - j);
    std::size_t u = next_unit;
    while (u < 4 && unit != kUnits[u].first) ++u;
    if (u == 4) return std::nullopt;
    if (v > 10000 * (kUnits[0].second / kUnits[u].second)) return std::nullopt;
    total += v * kUnits[u].second;
    if (total > 10000 * kUnits[0].second) return std::nullopt;
    next_unit = u + 1;
    i = k;
  }
  return Duration(total);
}

std::string format_duration(Duration d) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(d).count();
  if (ms % 3600000 == 0 && ms) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0 && ms) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0 && ms) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string summarize(const Config& c) {
  std::vector<std::size_t> per(c.levels.size(), 0);
  std::size_t devices = 0, snmp = 0;
  for (const auto& s : c.sites) {
    per[s.level_index]++;
    devices += s.devices.size();
    for (const auto& d : s.devices) snmp += d.snmp ? 1 : 0;
  }
  std::ostringstream o;
  o << c.sites.size() << " sites (";
  for (std::size_t i = 0; i < c.levels.size(); ++i) o << (i ? ", " : "") << per[i] << " " << c.levels[i];
  std::size_t sip = 0, h323 = 0, tcp = 0;
  for (const auto& s : c.sites)
    for (const auto& d : s.devices) sip += d.sip.enabled, h323 += d.h323.enabled, tcp += d.tcp.size();
  o << "), " << devices << " devices, " << devices + snmp + sip + h323 + tcp << " probes (" << devices
    << " icmp, " << snmp << " snmp, " << sip << " sip, " << h323 << " h323, " << tcp << " tcp)";
  return o.str();
}

LoadResult parse_config(const std::string& text, const std::string& name, const std::string& base_dir) {
  if (text.size() > static_cast<std::size_t>(kMaxInventoryBytes))
    return {nullptr,
            {name + ": an inventory may have at most " + std::to_string(kMaxInventoryBytes) + " bytes"},
            {}};
  return Parser(name, base_dir).run(text);
}

LoadResult load_config(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return {
        nullptr, {path + ": is a directory; give the inventory file (e.g. " + path + "/inventory.yml)"}, {}};
  if (stat(path.c_str(), &st) == 0 && st.st_size > kMaxInventoryBytes)
    return {nullptr,
            {path + ": " + std::to_string(st.st_size) + " bytes; an inventory may have at most " +
             std::to_string(kMaxInventoryBytes) + " (about 100,000 devices written out)"},
            {}};
  std::ifstream in(path, std::ios::binary);
  if (!in) return {nullptr, {path + ": cannot open inventory (" + std::strerror(errno) + ")"}, {}};
  std::ostringstream text;
  text << in.rdbuf();
  const auto slash = path.rfind('/');
  return parse_config(text.str(), path, slash == std::string::npos ? "." : path.substr(0, slash));
}

}  // namespace siteprobe
