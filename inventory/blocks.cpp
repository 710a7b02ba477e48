// Probe blocks of the inventory: icmp, snmp (and its modules), sip, tcp, the probe types' own
// blocks (BlockSchema, from the probe registry), and the
// defaults/roles/profiles layers that carry them.
#include "inventory/parser.h"
#include "util/net.h"
#include "util/pattern.h"

namespace siteprobe::inventory_detail {

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
        std::string t = v.IsScalar() ? v.Scalar() : "";
        obj.oid = parse_numeric_oid(t);
        if (!t.empty() && t[0] == '.') t.erase(0, 1);
        if (obj.oid.empty()) {
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
  if (!check_map(n, path, with_blocks({"icmp", "snmp", "sip", "tcp", "criticality"}))) return o;
  if (auto v = n["criticality"]) o.criticality = criticality_of(v, path + ".criticality");
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

ServiceOverride Parser::parse_sip(const YAML::Node& n, const std::string& path) {
  ServiceOverride o;
  o.at = {{n.Mark(), path}};
  if (!check_map(n, path, {"enabled", "transport", "port", "interval", "timeout"})) return o;
  using namespace std::chrono;
  if (auto v = n["enabled"]) o.enabled = bool_of(v, path + ".enabled");
  if (auto v = n["transport"]) {
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

BlockOverride Parser::parse_block(const BlockSchema& b, const YAML::Node& n, const std::string& path) {
  BlockOverride o;
  o.at = {{n.Mark(), path}};
  std::vector<std::string> keys = {"enabled"};
  for (const auto& k : b.keys) keys.push_back(k.name);
  if (!check_map(n, path, keys)) return o;
  if (auto v = n["enabled"]) o.enabled = bool_of(v, path + ".enabled");
  for (const auto& k : b.keys)
    if (auto v = n[k.name])
      if (auto x = block_value(k, v, path + "." + k.name)) o.values[k.name] = std::move(*x);
  return o;
}

std::optional<BlockValue> Parser::block_value(const BlockKey& k, const YAML::Node& v,
                                              const std::string& path) {
  using std::chrono::milliseconds;
  switch (k.kind) {
    case BlockKey::Kind::Int:
      if (auto i = int_of(v, path, k.min, k.max)) return BlockValue{std::int64_t{*i}};
      break;
    case BlockKey::Kind::Time:
      if (auto d = duration_of(v, path, milliseconds(k.min), milliseconds(k.max))) return BlockValue{*d};
      break;
    case BlockKey::Kind::String:
      if (auto s = string_of(v, path)) {
        if (k.allowed.empty() || std::find(k.allowed.begin(), k.allowed.end(), *s) != k.allowed.end())
          return BlockValue{*s};
        std::string list;
        for (const auto& a : k.allowed) list += (list.empty() ? "" : ", ") + a;
        error(v.Mark(), path, "unknown value \"" + *s + "\" (allowed: " + list + ")");
      }
      break;
    case BlockKey::Kind::Address:
      if (auto s = string_of(v, path)) {
        if (s->empty() || net::parse_ip(*s)) return BlockValue{*s};
        error(v.Mark(), path, "\"" + *s + "\" is not an IP address (IPv4 or IPv6, no name)");
      }
      break;
  }
  return std::nullopt;
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
      const auto blocks = with_blocks({"sip"});  // a check's `service` label is theirs
      if (x && (!valid_id(*x) || std::find(blocks.begin(), blocks.end(), *x) != blocks.end())) {
        std::string taken;
        for (const auto& b : blocks) taken += (taken.empty() ? "" : ", ") + b;
        error(v.Mark(), p + ".name",
              "invalid check name \"" + *x + "\" (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*, not " + taken + ")");
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
  if (auto v = n["sip"]) o.sip = parse_sip(v, path + ".sip");
  if (auto v = n["tcp"]) o.tcp = parse_tcp(v, path + ".tcp");
  for (const auto& b : schemas_)
    if (auto v = n[b.name]) o.blocks[b.name] = parse_block(b, v, path + "." + b.name);
}

// Layers the sip and tcp blocks and the probe types' own blocks (built-in < defaults < role <
// profile < device) into `d`, whose role and profile are known. A timeout longer than the
// interval is reported once, at the most specific block that sets the service.
void Parser::apply_call_blocks(const YAML::Node& n, const std::string& path, Device& d) {
  Overrides own;
  parse_call_blocks(n, path, own);
  std::vector<const Overrides*> layers = {&defaults_block_};
  if (roles_.count(d.role)) layers.push_back(&roles_.at(d.role));
  if (profiles_.count(d.profile)) layers.push_back(&profiles_.at(d.profile));
  layers.push_back(&own);
  const auto check_round = [&](Duration interval, Duration timeout, const std::string& name,
                               const std::pair<YAML::Mark, std::string>& culprit) {
    if (timeout > interval && round_reported_.insert(culprit.second).second)
      error(culprit.first, culprit.second,
            name + " timeout " + format_duration(timeout) + " exceeds interval " + format_duration(interval) +
                " (lower timeout or raise interval)");
  };
  std::pair<YAML::Mark, std::string> culprit{n.Mark(), path};
  d.sip.enabled = d.role == "vc_endpoint" || d.role == "mcu";
  for (const Overrides* l : layers) {
    l->sip.apply_to(d.sip);
    if (l->sip.at) culprit = *l->sip.at;
  }
  check_round(d.sip.interval, d.sip.timeout, "sip", culprit);
  for (const Overrides* l : layers)
    if (l->tcp) d.tcp = *l->tcp;
  for (const auto& b : schemas_) {
    auto [built_in, fresh] = built_in_.try_emplace(b.name);
    if (fresh)  // the built-in values, parsed once; a bad one is the schema's bug, reported here
      for (const auto& k : b.keys)
        if (auto v = block_value(k, YAML::Node(k.fallback), "built-in " + b.name + "." + k.name))
          built_in->second[k.name] = *v;
    BlockSettings::Values eff = built_in->second;
    bool on = std::find(b.enabled_roles.begin(), b.enabled_roles.end(), d.role) != b.enabled_roles.end();
    culprit = {n.Mark(), path};
    for (const Overrides* l : layers) {
      const auto it = l->blocks.find(b.name);
      if (it == l->blocks.end()) continue;
      if (it->second.enabled) on = *it->second.enabled;
      for (const auto& [k, v] : it->second.values) eff[k] = v;
      if (it->second.at) culprit = *it->second.at;
    }
    if (!on) continue;
    const auto interval = eff.find("interval"), timeout = eff.find("timeout");
    if (interval != eff.end() && timeout != eff.end())
      check_round(std::get<Duration>(interval->second), std::get<Duration>(timeout->second), b.name, culprit);
    auto shared = interned_.find(eff);
    if (shared == interned_.end()) {
      auto v = std::make_shared<const BlockSettings::Values>(eff);
      shared = interned_.emplace(std::move(eff), std::move(v)).first;
    }
    d.blocks.emplace(b.name, BlockSettings{shared->second});
  }
}

std::optional<std::string> Parser::criticality_of(const YAML::Node& n, const std::string& path) {
  auto s = string_of(n, path);
  if (s && !kCriticalities.count(*s)) {
    error(n.Mark(), path, "unknown criticality \"" + *s + "\" (allowed: critical, major, minor)");
    return std::nullopt;
  }
  return s;
}

// Built-in < defaults < role < profile < device. Built in: the mcu role and the routers of a
// top-level site (the province core every other site is reached through) are critical.
void Parser::apply_criticality(const YAML::Node& n, const std::string& path, const Site& site, Device& d) {
  d.criticality = d.role == "mcu" || (d.role == "router" && site.parent.empty()) ? "critical" : "major";
  if (defaults_block_.criticality) d.criticality = *defaults_block_.criticality;
  if (roles_.count(d.role) && roles_.at(d.role).criticality) d.criticality = *roles_.at(d.role).criticality;
  if (profiles_.count(d.profile) && profiles_.at(d.profile).criticality)
    d.criticality = *profiles_.at(d.profile).criticality;
  if (auto v = n["criticality"])
    if (auto c = criticality_of(v, path + ".criticality")) d.criticality = *c;
}

}  // namespace siteprobe::inventory_detail
