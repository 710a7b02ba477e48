// The site inventory: plain structs filled by the parser, checked by the validator, then frozen.
//
// load_config() either returns a complete, validated Config or every error it found; it never
// returns half a config. After loading, a Config is immutable and shared as shared_ptr<const Config>.
// Pure functions, no I/O besides reading the inventory and the secret files it names.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace siteprobe {

using Duration = std::chrono::nanoseconds;

struct IcmpSettings {
  Duration interval = std::chrono::seconds(10);
  Duration timeout = std::chrono::seconds(2);
  Duration spacing = std::chrono::milliseconds(200);
  int packets = 5;
  int payload_bytes = 56;  // ICMP payload after the 8-byte echo header
  // Eight buckets: 5 ms resolves a LAN, 100-250 ms brackets the 150 ms degraded/HighLatency
  // threshold. Each bound is a series per device (issue #12); finer ones via `icmp.rtt_buckets`.
  std::vector<double> rtt_buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
};

// Call-service probes of video-conference endpoints (probes/sip.h, probes/tcp.h). `enabled`
// defaults to true for the vc_endpoint and mcu roles and false for every other role.
struct SipSettings {
  bool enabled = false;
  std::string transport = "udp";  // "udp" or "tcp"
  int port = 5060;
  Duration interval = std::chrono::seconds(10);
  Duration timeout = std::chrono::seconds(2);
};
// The inventory block of a probe type, declared by the type's row in the probe registry
// (probes/registry.cpp) and handed to load_config(): the inventory knows no such block itself.
// Besides `enabled`, each key is an integer, a duration or a string with a built-in value. The
// block is layered built-in < defaults < role < profile < device like the built-in blocks; a
// timeout longer than the interval is an error where the block sets it.
struct BlockKey {
  enum class Kind { Int, Time, String, Address };  // Time: a Duration; Address: an IP literal or ""
  std::string name;
  Kind kind = Kind::Int;
  std::string fallback;                   // the built-in value, spelled as in YAML: "1720", "10s"
  std::int64_t min = 0, max = 0;          // Int: the range; Time: the range in milliseconds
  std::vector<std::string> allowed = {};  // String: the values allowed (empty: any)
};
struct BlockSchema {
  std::string name;                        // its key in defaults, roles, profiles and devices
  std::vector<std::string> enabled_roles;  // roles that have it on unless `enabled: false`
  std::vector<BlockKey> keys;
};
using BlockValue = std::variant<std::int64_t, Duration, std::string>;
// A device's effective block, only for blocks that are on: every key of its schema, set. The values
// are shared by every device whose block has the same ones (the parser interns them): a map per
// device cost 1.7 KB per router at 20k routers.
struct BlockSettings {
  using Values = std::map<std::string, BlockValue>;
  std::shared_ptr<const Values> values = empty();
  std::int64_t integer(const std::string& key) const { return std::get<std::int64_t>(values->at(key)); }
  Duration duration(const std::string& key) const { return std::get<Duration>(values->at(key)); }
  const std::string& text(const std::string& key) const { return std::get<std::string>(values->at(key)); }
  bool operator==(const BlockSettings& o) const { return *values == *o.values; }
  bool operator!=(const BlockSettings& o) const { return !(*this == o); }

 private:
  static const std::shared_ptr<const Values>& empty() {
    static const auto none = std::make_shared<const Values>();
    return none;
  }
};
struct TcpCheck {  // a generic TCP connect probe: management ports, the codec's web UI
  std::string name;
  int port = 0;
  Duration interval = std::chrono::seconds(10);
  Duration timeout = std::chrono::seconds(2);
  bool operator==(const TcpCheck& o) const {
    return name == o.name && port == o.port && interval == o.interval && timeout == o.timeout;
  }
};

// SNMP credentials, referenced by name. Secrets are read from files at load time and never printed.
struct AuthProfile {
  std::string name;
  std::string version;  // "1", "2c" or "3"
  std::string community;
  std::string username;
  std::string security_level;  // noAuthNoPriv, authNoPriv, authPriv
  std::string auth_protocol;
  std::string auth_passphrase;
  std::string priv_protocol;
  std::string priv_passphrase;
  bool inline_secret = false;  // a secret above was written in the inventory, not read from a *_file
};

// One value a custom SNMP module polls (`snmp_modules` in the inventory).
struct SnmpObject {
  std::string name;                // metric name after "siteprobe_snmp_"
  std::vector<std::uint32_t> oid;  // numeric OID
  std::string type;                // gauge, counter or info
  bool walk = false;               // a table column: every row becomes a series
  std::string index_label;         // with walk: label holding the row index ("1", "3.7")
  std::string help;
};

// Effective SNMP settings of a device: defaults < role < profile < device.
struct SnmpSettings {
  std::string auth;  // auth profile name
  int port = 161;
  Duration interval = std::chrono::seconds(60);
  Duration timeout = std::chrono::seconds(2);
  int retries = 1;
  int max_repetitions = 25;
  int max_interfaces = 1024;  // rows per walked column; more fails the poll as too_many_rows
  std::vector<std::string> modules = {"system", "interfaces"};
  std::vector<std::string> interfaces_include, interfaces_exclude;  // RE2 patterns on ifName
  std::string uplink;                                               // regex; matching interfaces are uplinks
};

struct Device {
  std::string name;
  std::string address;  // IPv4 or IPv6 literal, or a DNS name
  std::string role;
  std::string profile;               // empty if none
  IcmpSettings icmp;                 // effective settings: defaults < role < profile < device
  std::optional<SnmpSettings> snmp;  // polled over SNMP only if set (an auth profile is given)
  bool reachability = false;         // decides whether its site is reachable (site_state.reachability_roles)
  SipSettings sip;                   // effective, like icmp
  std::vector<TcpCheck> tcp;
  // How much an outage of this device matters: "critical", "major" or "minor" (`criticality`,
  // defaults < role < profile < device). Without a setting: critical for the mcu role and for the
  // routers of a top-level (province) site, major for everything else. Exported as a label of
  // siteprobe_device_info for the alert rules and dashboards.
  std::string criticality = "major";
  std::map<std::string, BlockSettings> blocks;  // the registry's blocks (BlockSchema) that are on
  // `path: primary`: its address is on the site's primary uplink (the router's address on that
  // link, or the link's next hop). Only on sites with backup parents: when every such device fails
  // while the site answers, the site is on its backup path (daemon/site_state.h).
  bool primary_path = false;
};

struct Site {
  std::string id;
  std::string name;
  std::string level;
  std::size_t level_index = 0;
  std::string parent;  // empty for a top-level site; the primary uplink's parent
  // Parents over backup uplinks (4G, a second MPLS link), each at a level above this site's: the
  // site is unreachable only when its parent and all of these are down or unreachable.
  std::vector<std::string> backup_parents;
  std::optional<double> lat, lon;
  // Where maps draw the site: lat/lon, except that sites sharing exact coordinates (a province and
  // its capital city's district) are spread on a small circle so each can be seen and clicked.
  std::optional<double> map_lat, map_lon;
  std::map<std::string, std::string> labels;
  // Ids this site had in earlier inventories (a rename, or several sites merged into this one):
  // exported as siteprobe_site_alias_info so dashboards can join old and new series.
  std::vector<std::string> formerly;
  // The hop addresses a trace toward the site's router should find, in order (`expected_path`):
  // such a site is traced every trace.interval, and siteprobe_path_changed says when it differs.
  std::vector<std::string> expected_path;
  // Only in a shard's inventory (inventory/shard.h): probed so the shard can tell down from
  // unreachable, but owned (and paged for) by another shard.
  bool shard_ancestor = false;
  std::vector<Device> devices;
  // chain[i] is the id of this site's ancestor (or itself) at levels[i], "" if none.
  std::vector<std::string> chain;
};

// Fills every site's map_lat/map_lon (above): the first of sites with identical coordinates, in
// inventory order, stays; the others go round it at kMapSpreadDegrees (about 3 km).
inline constexpr double kMapSpreadDegrees = 0.03;
void spread_map_positions(std::vector<Site>& sites);

// How site states are derived from probe rounds (daemon/site_state.h).
struct SiteStateSettings {
  int down_after = 2;  // consecutive failed rounds before a device counts as down
  int up_after = 2;    // consecutive good rounds before it counts as up again
  int window = 10;     // rounds over which loss and RTT are averaged for "degraded" and MOS
  double degraded_loss = 0.1;
  Duration degraded_rtt = std::chrono::milliseconds(150);
  std::vector<std::string> reachability_roles = {"router"};
};

// A recurring conference (docs/inventory.md#conferences): its pre-flight runs path tests and a
// tighter readiness view for its participants (daemon/conference.h).
struct Conference {
  std::string name;
  std::vector<int> weekdays;  // 0 = Sunday .. 6 = Saturday; empty when `dates` is used
  std::vector<long> dates;    // days since 1970-01-01 (local calendar dates)
  int start_minute = 0;       // minutes after local midnight
  std::string time_zone = "Asia/Ho_Chi_Minh";
  int utc_offset_seconds = 7 * 3600;  // fixed: zones with daylight-saving rules are refused
  Duration duration = std::chrono::hours(1);
  double bitrate_bps = 0;           // the path tests' bitrate; 0: each device's stamp.bitrate_kbps
  std::vector<Duration> preflight;  // before the start, longest first
  // From the first pre-flight mark to the end, participants' ICMP, SIP and H.323 checks run at
  // least this often.
  Duration preflight_interval = std::chrono::seconds(5);
  std::vector<std::string> participants;  // site ids, resolved from the selectors, tree order
  std::string participants_text;          // the selectors as written: "all", "district pac-nam", ...
};

// A planned-work window (docs/inventory.md#maintenance): while it is on, the shipped alert rules
// page nothing for its sites and devices (daemon/maintenance.h exports siteprobe_maintenance).
struct MaintenanceWindow {
  std::string name, reason, ticket;
  std::int64_t start = 0, end = 0;     // one-off: unix seconds; both 0 for a recurring window
  std::vector<int> weekdays;           // recurring weekly: 0 = Sunday .. 6 = Saturday
  std::vector<int> month_days;         // recurring monthly: 1..31 (a month without that day skips it)
  int from_minute = 0, to_minute = 0;  // recurring: local minutes after midnight; to < from: next day
  std::string time_zone = "Asia/Ho_Chi_Minh";
  int utc_offset_seconds = 7 * 3600;
  std::vector<std::string> sites;    // site ids (subtrees resolved), tree order
  std::vector<std::string> devices;  // "site/device" keys of devices named alone
  std::string targets_text;          // as written: "subtree pac-nam, ba-be.banh-trach/vc"
};

// Availability targets for `siteprobe report` (docs/inventory.md#sla): `slo` in percent for every
// site, `sites` overrides for a site and its subtree (the nearest override wins), and the zone in
// which a report's month runs.
struct SlaSettings {
  double slo = 99.5;
  std::map<std::string, double> site_slo;  // site id -> percent, for its subtree
  std::string time_zone = "Asia/Ho_Chi_Minh";
  int utc_offset_seconds = 7 * 3600;
  double slo_of(const Site& s) const;  // the nearest override on the site's chain, else slo
};

// The SNMP trap and inform receiver (docs/inventory.md#traps, probes/snmp_trap.h): off unless
// `listen` is set.
struct TrapVendor {
  std::vector<std::uint32_t> oid;  // snmpTrapOID.0 (v1: enterprise.0.specific), matched exactly
  std::string kind, severity;
};
struct TrapSettings {
  std::string listen;        // "127.0.0.1:9162", "[::1]:162"; empty: no receiver
  int max_per_second = 100;  // datagrams decoded per second, over all senders (token bucket)
  Duration debounce = std::chrono::seconds(5);  // at most one extra probe round per device this often
  int max_per_source = 20;  // datagrams per second from one UDP source (token bucket), before the above
  std::vector<std::uint8_t>
      engine_id;  // the receiver's SNMP engine ID (v3 informs); empty: from the host name
  std::vector<TrapVendor> vendor;
};

// Path diagnosis (docs/inventory.md#trace, daemon/path_trace.h): a TTL-limited trace toward a
// site's router when the site goes down, and every `interval` for sites with an expected_path.
struct TraceSettings {
  int max_hops = 16;
  int max_per_minute = 10;  // traces over all sites (token bucket); the rest wait their turn
  Duration timeout = std::chrono::seconds(2);
  Duration interval = std::chrono::minutes(5);
};

struct Config {
  std::string file;
  std::vector<std::string> levels = {"province", "district", "commune"};
  Duration dns_refresh = std::chrono::minutes(5);
  double icmp_max_packets_per_second = 20000;
  SiteStateSettings site_state;
  double readiness_min_mos = 3.6;  // an endpoint is ready only with an estimated MOS at least this
  std::map<std::string, AuthProfile> auth;
  int max_devices = 100000;     // a bound on what one file can make the daemon hold
  int snmp_max_inflight = 256;  // SNMP polls in flight at once, over all devices (one socket each)
  // Path tests (probes/stamp.h): bits per second over all running streams, and streams at once
  // per district subtree (its uplink).
  double path_test_max_bps = 20e6;
  int path_test_streams_per_subtree = 1;
  std::map<std::string, std::vector<SnmpObject>> snmp_modules;  // custom modules by name
  std::vector<Site> sites;
  std::vector<Conference> conferences;
  std::vector<MaintenanceWindow> maintenance;
  SlaSettings sla;
  TrapSettings traps;
  TraceSettings trace;

  // Label names of the parent chain: every level but the deepest (the deepest is `site` itself).
  std::vector<std::string> chain_labels() const { return {levels.begin(), levels.end() - 1}; }
  std::size_t device_count() const;
  // A device's identity across reloads, in every prober and every result: "site/device".
  static std::string device_key(const Site& s, const Device& d) { return s.id + "/" + d.name; }
  // The labels every series of a site carries: site, level and the parent chain...
  std::map<std::string, std::string> site_labels(const Site& s) const;
  // ... and of a device: its site's, plus device and role.
  std::map<std::string, std::string> device_labels(const Site& s, const Device& d) const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<std::string> errors;       // "FILE:LINE:COL: key.path: what is wrong (allowed)"
  std::vector<std::string> warnings;     // "FILE:LINE:COL: key.path: warning: ..."; the file loads
};

// The largest inventory file: parsing and validating it must stay far below the watchdog's 60 s.
constexpr long kMaxInventoryBytes = 32L << 20;

// `blocks`: the probe types' own blocks (probes::inventory_blocks(); probes::load_inventory()
// passes them).
LoadResult load_config(const std::string& path, const std::vector<BlockSchema>& blocks);
// Parses inventory text; `name` is used in error messages and relative secret paths resolve
// against `base_dir`.
LoadResult parse_config(const std::string& text, const std::vector<BlockSchema>& blocks,
                        const std::string& name, const std::string& base_dir = ".");

// "250ms", "10s", "1m", "1h30m"; nullopt if malformed.
std::optional<Duration> parse_duration(const std::string& s);
std::string format_duration(Duration d);

// One line: sites per level, devices, probes.
std::string summarize(const Config& config);

}  // namespace siteprobe
