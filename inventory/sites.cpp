// Levels, global settings, site_state, SNMP auth, sites and devices, and the tree they form.
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "inventory/parser.h"
#include "util/text.h"

namespace siteprobe::inventory_detail {

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
                 {"dns_refresh", "icmp_max_packets_per_second", "snmp_max_inflight", "max_devices",
                  "path_test_max_kbps", "path_test_streams_per_subtree"}))
    return;
  if (auto v = n["max_devices"])
    if (auto i = int_of(v, "global.max_devices", 1, 10000000)) cfg_.max_devices = static_cast<int>(*i);
  if (auto v = n["snmp_max_inflight"])
    if (auto i = int_of(v, "global.snmp_max_inflight", 1, 4096))
      cfg_.snmp_max_inflight = static_cast<int>(*i);
  if (auto v = n["path_test_max_kbps"])
    if (auto i = int_of(v, "global.path_test_max_kbps", 8, 10000000))
      cfg_.path_test_max_bps = static_cast<double>(*i) * 1000;
  if (auto v = n["path_test_streams_per_subtree"])
    if (auto i = int_of(v, "global.path_test_streams_per_subtree", 1, 1000))
      cfg_.path_test_streams_per_subtree = static_cast<int>(*i);
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
  FILE* f = std::fopen(full.c_str(), "r");  // NOLINT(cppcoreguidelines-owning-memory): closed below
  int err = f ? 0 : errno;
  if (f) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && secret.size() < 65536) secret.append(buf, n);
    if (std::ferror(f)) err = errno ? errno : EIO;
    std::fclose(f);  // NOLINT(cppcoreguidelines-owning-memory)
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
  if (!check_map(n, path,
                 with_blocks({"name", "address", "role", "profile", "reachability", "icmp", "snmp", "sip",
                              "tcp", "criticality", "path"})))
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
  if (auto v = n["path"]) {
    if (auto s = string_of(v, path + ".path")) {
      if (*s != "primary")
        error(v.Mark(), path + ".path", "unknown path \"" + *s + "\" (allowed: primary)");
      else if (site.backup_parents.empty())
        error(v.Mark(), path + ".path",
              "path: primary marks the primary uplink of a site with backup_parents; site \"" + site.id +
                  "\" has none");
      d.primary_path = *s == "primary";
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
  apply_criticality(n, path, site, d);
  const auto& rr = cfg_.site_state.reachability_roles;
  // A primary-path address fails whenever the primary link is cut: that is the backup path, not
  // the site's reachability (unless set explicitly).
  d.reachability = !d.primary_path && std::find(rr.begin(), rr.end(), d.role) != rr.end();
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
  // Every old id in some site's formerly, and where: an old site lives on in one new site.
  std::map<std::string, YAML::Mark> formerly_seen;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& s = n[i];
    const std::string path = "sites[" + std::to_string(i) + "]";
    if (!check_map(s, path,
                   {"id", "name", "level", "parent", "backup_parents", "lat", "lon", "labels", "formerly",
                    "expected_path", "devices"}))
      continue;
    Site site;
    SiteRef ref{path, s.Mark(), s.Mark(), s.Mark(), {}};
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
    if (auto v = s["backup_parents"]) {  // a list, or one id
      if (v.IsScalar()) {
        ref.backups.push_back(v.Mark());
        if (auto x = string_of(v, path + ".backup_parents")) site.backup_parents.push_back(*x);
      } else if (auto x = string_list(v, path + ".backup_parents", false)) {
        site.backup_parents = *x;
        for (std::size_t j = 0; j < v.size(); ++j) ref.backups.push_back(v[j].Mark());
      }
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
    // formerly: ids this site had in an earlier inventory (docs/inventory.md#renames-and-merges).
    if (auto v = s["formerly"]) {
      if (!v.IsSequence()) {
        error(v.Mark(), path + ".formerly", "must be a list of old site ids");
      } else {
        for (std::size_t j = 0; j < v.size(); ++j) {
          const std::string fp = path + ".formerly[" + std::to_string(j) + "]";
          auto x = string_of(v[j], fp);
          if (!x) continue;
          if (!valid_id(*x))
            error(v[j].Mark(), fp,
                  "invalid site id \"" + *x + "\" (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64)");
          else if (all_ids.count(*x))
            error(v[j].Mark(), fp,
                  "\"" + *x + "\" is a site id in this file (formerly lists ids that no longer exist)");
          else if (auto [it, fresh] = formerly_seen.emplace(*x, v[j].Mark()); !fresh)
            error(v[j].Mark(), fp,
                  "old site id \"" + *x + "\" is already in a formerly list (at " + where(it->second) +
                      "): an old site becomes one new site");
          else
            site.formerly.push_back(*x);
        }
      }
    }
    if (auto v = s["expected_path"]) parse_expected_path(v, path + ".expected_path", site);
    if (auto v = s["devices"]) {
      if (!v.IsSequence()) {
        error(v.Mark(), path + ".devices", "must be a list of devices");
      } else {
        std::map<std::string, YAML::Mark> names;
        // Exactly (a Device is about 0.6 KB; slack would cost 100k of them), never past max_devices.
        const auto room = static_cast<std::size_t>(cfg_.max_devices) -
                          std::min(devices_seen_, static_cast<std::size_t>(cfg_.max_devices));
        site.devices.reserve(std::min<std::size_t>(v.size(), room));
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
  spread_map_positions(cfg_.sites);
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
  // Backup parents: known, each once, not the primary, and above the site's level (so the state
  // is decided parents first and no backup can form a cycle).
  for (std::size_t i = 0; i < cfg_.sites.size(); ++i) {
    const Site& s = cfg_.sites[i];
    std::set<std::string> seen;
    for (std::size_t j = 0; j < s.backup_parents.size(); ++j) {
      const std::string& b = s.backup_parents[j];
      const YAML::Mark& at = refs[i].backups[j];
      const std::string p = refs[i].path + ".backup_parents[" + std::to_string(j) + "]";
      auto it = index.find(b);
      if (s.parent.empty()) {
        error(at, p, "a top-level site has no parent, so no backup parent either");
      } else if (b == s.parent) {
        error(at, p, "\"" + b + "\" is already the primary parent");
      } else if (!seen.insert(b).second) {
        error(at, p, "duplicate backup parent \"" + b + "\"");
      } else if (it == index.end()) {
        if (!all_ids.count(b)) error(at, p, "unknown backup parent \"" + b + "\" (no site has this id)");
      } else if (cfg_.sites[it->second].level_index >= s.level_index) {
        error(at, p,
              "backup parent \"" + b + "\" is at level \"" + cfg_.sites[it->second].level +
                  "\", not above this site's \"" + s.level + "\"");
      } else {
        continue;
      }
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

}  // namespace siteprobe::inventory_detail
