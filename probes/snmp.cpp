#include "probes/snmp.h"

#include "metrics/families.h"

// clang-format off: net-snmp needs its config header first
#include <net-snmp/library/large_fd_set.h>
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
// clang-format on
// net-snmp names GETBULK's fields with macros; they would rename SnmpSettings::max_repetitions.
#undef max_repetitions
#undef non_repeaters

#include <arpa/inet.h>
#include <malloc.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>

namespace siteprobe::probes {
namespace {

// IF-MIB columns.
const Oid kIfTable = {1, 3, 6, 1, 2, 1, 2, 2, 1};
const Oid kIfXTable = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1};
enum IfCol : std::uint32_t {
  kIfDescr = 2,
  kIfSpeed = 5,
  kIfAdmin = 7,
  kIfOper = 8,
  kIfInOctets = 10,
  kIfInUcast = 11,
  kIfInDiscards = 13,
  kIfInErrors = 14,
  kIfOutOctets = 16,
  kIfOutUcast = 17,
  kIfOutDiscards = 19,
  kIfOutErrors = 20
};
enum IfXCol : std::uint32_t {
  kIfName = 1,
  kIfHCInOctets = 6,
  kIfHCInUcast = 7,
  kIfHCOutOctets = 10,
  kIfHCOutUcast = 11,
  kIfHighSpeed = 15,
  kIfAlias = 18
};
const Oid kSysDescr = {1, 3, 6, 1, 2, 1, 1, 1, 0};
const Oid kSysObjectID = {1, 3, 6, 1, 2, 1, 1, 2, 0};
const Oid kSysUpTime = {1, 3, 6, 1, 2, 1, 1, 3, 0};
const Oid kSysName = {1, 3, 6, 1, 2, 1, 1, 5, 0};

Oid col(const Oid& table, std::uint32_t c) {
  Oid o = table;
  o.push_back(c);
  return o;
}

std::string dotted(const Oid& o) {
  std::string s;
  for (auto x : o) s += (s.empty() ? "" : ".") + std::to_string(x);
  return s;
}

bool full_match(const std::vector<NamePattern>& res, const std::string& s) {
  return std::any_of(res.begin(), res.end(), [&](const NamePattern& r) { return r.matches(s); });
}

// Order of the built-in families on /metrics (HELP and TYPE from metrics/families.cpp).
const char* const kF[] = {"siteprobe_snmp_up",
                          "siteprobe_snmp_poll_duration_seconds",
                          "siteprobe_snmp_polls_total",
                          "siteprobe_snmp_errors_total",
                          "siteprobe_snmp_pdus_sent_total",
                          "siteprobe_snmp_pdus_received_total",
                          "siteprobe_snmp_max_repetitions",
                          "siteprobe_snmp_uptime_seconds",
                          "siteprobe_snmp_device_reboots_total",
                          "siteprobe_snmp_device_info",
                          "siteprobe_snmp_interface_oper_status",
                          "siteprobe_snmp_interface_admin_status",
                          "siteprobe_snmp_interface_uplink",
                          "siteprobe_snmp_interface_speed_bytes_per_second",
                          "siteprobe_snmp_interface_high_capacity",
                          "siteprobe_snmp_interface_received_bytes_total",
                          "siteprobe_snmp_interface_sent_bytes_total",
                          "siteprobe_snmp_interface_received_unicast_packets_total",
                          "siteprobe_snmp_interface_sent_unicast_packets_total",
                          "siteprobe_snmp_interface_receive_errors_total",
                          "siteprobe_snmp_interface_transmit_errors_total",
                          "siteprobe_snmp_interface_receive_discards_total",
                          "siteprobe_snmp_interface_transmit_discards_total"};
// Not in kF: rendered once for the prober, not per device.
const char* const kLoadFamilies[] = {"siteprobe_snmp_polls_in_flight", "siteprobe_snmp_polls_waiting"};
const char* const kTraffic[4] = {"siteprobe_snmp_interface_received_bytes_total",
                                 "siteprobe_snmp_interface_sent_bytes_total",
                                 "siteprobe_snmp_interface_received_unicast_packets_total",
                                 "siteprobe_snmp_interface_sent_unicast_packets_total"};
const char* const kErrs[4] = {
    "siteprobe_snmp_interface_receive_errors_total", "siteprobe_snmp_interface_transmit_errors_total",
    "siteprobe_snmp_interface_receive_discards_total", "siteprobe_snmp_interface_transmit_discards_total"};

void line(std::map<std::string, std::string>& out, const std::string& family, const std::string& labels,
          double v) {
  std::string& s = out[family];
  s += family;
  s += '{';
  s += labels;
  s += "} ";
  append_value(s, v);
  s += '\n';
}
void line(std::map<std::string, std::string>& out, const std::string& family, const std::string& labels,
          std::uint64_t v) {
  std::string& s = out[family];
  s += family;
  s += '{';
  s += labels;
  s += "} ";
  append_value(s, v);
  s += '\n';
}

std::string label(const char* k, const std::string& v) {
  return render_labels({{k, sanitize_utf8(v)}});
}

}  // namespace

const std::vector<std::string> SnmpDeviceState::kErrorKinds = {
    "timeout",      "auth",       "too_big", "no_such_name",  "decode",   "not_increasing",
    "error_status", "unresolved", "send",    "too_many_rows", "oversized"};

const std::vector<std::string>& snmp_builtin_families() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const char* f : kF) v.emplace_back(f);
    for (const char* f : kLoadFamilies) v.emplace_back(f);
    return v;
  }();
  return names;
}

bool uptime_rebooted(std::uint32_t prev, std::uint32_t now, double elapsed_s) {
  if (now >= prev) return false;
  const double expected = static_cast<double>(prev) + elapsed_s * 100.0;
  constexpr double kWrap = 4294967296.0;
  if (expected < kWrap) return true;
  // A wrap lands near expected - 2^32; allow 10 % of the elapsed time (plus 10 s) of clock slack.
  const double landed = expected - kWrap, slack = elapsed_s * 10.0 + 1000.0;
  return std::fabs(static_cast<double>(now) - landed) > slack;
}

void SnmpDeviceState::count_error(const std::string& kind, std::uint64_t n) {
  errors_[kind] += n;
}
void SnmpDeviceState::failed(const std::string& kind) {
  count_error(kind);
}

void SnmpDeviceState::poll_done(bool ok, double duration_s, int max_repetitions) {
  up_ = ok;
  polled_ = true;
  ++polls_;
  duration_ = duration_s;
  max_rep_ = max_repetitions;
}

SnmpDeviceState::Settings::Settings(const std::vector<std::string>& inc, const std::vector<std::string>& exc,
                                    const std::string& up) {
  for (const auto& r : inc) include.emplace_back(r);
  for (const auto& r : exc) exclude.emplace_back(r);  // patterns were checked when the inventory loaded
  if (!up.empty()) uplink.emplace(up);
}

void SnmpDeviceState::apply(const PollData& d, const Settings& s, double now_s) {
  bool rebooted = false;
  const double prev_at = last_at_;
  last_at_ = now_s;
  if (auto it = d.scalars.find(kSysUpTime); it != d.scalars.end() && it->second.type == SnmpVal::T::Ticks) {
    const auto t = static_cast<std::uint32_t>(it->second.u);
    if (ticks_ && uptime_rebooted(*ticks_, t, now_s - ticks_at_)) {
      rebooted = true;
      ++reboots_;
    }
    ticks_ = t;
    ticks_at_ = now_s;
  }
  const auto str = [&](const Oid& o, std::string& into) {
    if (auto it = d.scalars.find(o); it != d.scalars.end()) {
      if (it->second.type == SnmpVal::T::String || it->second.type == SnmpVal::T::ObjectId) {
        into = clip_utf8(it->second.s, kMaxDisplayString);
        have_system_ = true;
      }
    }
  };
  str(kSysName, sys_name_);
  str(kSysDescr, sys_descr_);
  str(kSysObjectID, sys_oid_);

  // Interfaces: rows from every walked IF-MIB column, keyed by ifIndex.
  const auto column = [&](const Oid& table, std::uint32_t c) -> const std::map<Oid, SnmpVal>* {
    auto it = d.columns.find(col(table, c));
    return it == d.columns.end() ? nullptr : &it->second;
  };
  if (column(kIfTable, kIfOper) || column(kIfXTable, kIfName)) {
    std::map<std::uint32_t, std::map<std::pair<int, std::uint32_t>, const SnmpVal*>> rows;
    for (const auto& [c, vals] : d.columns) {
      int table = 0;
      if (c.size() == kIfTable.size() + 1 && std::equal(kIfTable.begin(), kIfTable.end(), c.begin()))
        table = 1;
      else if (c.size() == kIfXTable.size() + 1 && std::equal(kIfXTable.begin(), kIfXTable.end(), c.begin()))
        table = 2;
      if (!table) continue;
      for (const auto& [idx, v] : vals)
        if (idx.size() == 1 && v.type != SnmpVal::T::Missing) rows[idx[0]][{table, c.back()}] = &v;
    }
    std::map<std::uint32_t, Iface> next;
    for (const auto& row : rows) {
      // Not a structured binding: lambdas may capture those only from C++20 (clang rejects it).
      const std::uint32_t ifindex = row.first;
      const auto& r = row.second;
      const auto get = [&](int t, std::uint32_t c) -> const SnmpVal* {
        auto it = r.find({t, c});
        return it == r.end() ? nullptr : it->second;
      };
      Iface f = ifaces_.count(ifindex) ? ifaces_[ifindex] : Iface{};
      // Names as exported (valid UTF-8, at most a DisplayString), and patterns match those.
      if (auto v = get(2, kIfName); v && !v->s.empty())
        f.name = clip_utf8(v->s, kMaxDisplayString);
      else if (auto w = get(1, kIfDescr))
        f.name = clip_utf8(w->s, kMaxDisplayString);
      else if (f.name.empty())
        f.name = std::to_string(ifindex);
      if (auto v = get(2, kIfAlias)) f.alias = clip_utf8(v->s, kMaxDisplayString);
      if ((!s.include.empty() && !full_match(s.include, f.name)) || full_match(s.exclude, f.name)) continue;
      f.uplink = s.uplink && s.uplink->matches(f.name);
      if (auto v = get(1, kIfOper); v && v->numeric()) f.oper = v->number();
      if (auto v = get(1, kIfAdmin); v && v->numeric()) f.admin = v->number();
      if (auto v = get(2, kIfHighSpeed); v && v->numeric() && v->u > 0)
        f.speed_bps = v->number() * 1e6;
      else if (auto w = get(1, kIfSpeed); w && w->numeric())
        f.speed_bps = w->number();
      const double elapsed = f.seen && prev_at > 0 ? now_s - prev_at : 0;
      const std::uint32_t hc[4] = {kIfHCInOctets, kIfHCOutOctets, kIfHCInUcast, kIfHCOutUcast};
      const std::uint32_t c32[4] = {kIfInOctets, kIfOutOctets, kIfInUcast, kIfOutUcast};
      const std::uint32_t ec[4] = {kIfInErrors, kIfOutErrors, kIfInDiscards, kIfOutDiscards};
      for (int k = 0; k < 4; ++k) {
        std::uint64_t delta = 0, first = 0;
        int src = 0;
        if (auto v = get(2, hc[k]); v && v->type == SnmpVal::T::Counter64) {
          f.hc = true;
          if (f.src[k] == 64) delta = v->u >= f.last64[k] ? v->u - f.last64[k] : v->u;  // less: reset
          first = f.last64[k] = v->u;
          src = 64;
        } else if (auto w = get(1, c32[k]); w && w->numeric()) {
          f.hc = false;
          const std::uint64_t before = f.c32[k].total;
          // Octets: at most speed/8 per second; packets: at most speed/(8*64) (minimum frame).
          const double per_s = f.speed_bps / 8 / (k < 2 ? 1 : 64);
          f.c32[k].update(static_cast<std::uint32_t>(w->u), rebooted,
                          elapsed > 0 ? per_s * elapsed * 1.5 : 0);
          if (f.src[k] == 32) delta = f.c32[k].total - before;
          first = w->u;
          src = 32;
        }
        if (src) {
          f.total[k] = f.src[k] ? f.total[k] + delta : first;
          f.src[k] = src;
        }
        if (auto v = get(1, ec[k]); v && v->numeric())
          f.err[k].update(static_cast<std::uint32_t>(v->u), rebooted);
      }
      f.seen = true;
      next[ifindex] = f;
    }
    ifaces_ = std::move(next);
  }

  // Custom objects.
  custom_.clear();
  std::map<std::string, WrapCounter> wraps;  // Counter32 series present in this poll
  for (const SnmpObject* o : s.custom) {
    const std::string family = "siteprobe_snmp_" + o->name;
    const auto add = [&](const SnmpVal& v, const std::string& idx_labels) {
      if (v.type == SnmpVal::T::Missing) return;
      if (o->type == "info") {
        std::string val = v.numeric() ? std::to_string(v.u) : clip_utf8(v.s, kMaxValueBytes);
        if (v.type == SnmpVal::T::Int) val = std::to_string(v.i);
        std::string l = idx_labels;
        l += (l.empty() ? "" : ",") + label("value", val);
        custom_.push_back({family, o->type, l, 1});
      } else if (o->type == "counter" && v.type == SnmpVal::T::Counter32) {  // wrap-corrected
        const std::string key = family + '{' + idx_labels;
        const auto it = custom_wrap_.find(key);
        WrapCounter w = it == custom_wrap_.end() ? WrapCounter{} : it->second;
        w.update(static_cast<std::uint32_t>(v.u), rebooted);
        custom_.push_back({family, o->type, idx_labels, static_cast<double>(w.total)});
        wraps[key] = w;
      } else if (v.numeric()) {
        custom_.push_back({family, o->type, idx_labels, v.number()});
      } else if (v.type == SnmpVal::T::String) {  // some agents send numbers as text ("23.5")
        char* end = nullptr;
        const std::string t = sanitize_utf8(v.s);
        const double x = std::strtod(t.c_str(), &end);
        if (end != t.c_str() && *end == '\0' && std::isfinite(x))
          custom_.push_back({family, o->type, idx_labels, x});
        else
          count_error("decode");
      }
    };
    if (o->walk) {
      auto it = d.columns.find(o->oid);
      if (it == d.columns.end()) continue;
      for (const auto& [idx, v] : it->second) add(v, label(o->index_label.c_str(), dotted(idx)));
    } else if (auto it = d.scalars.find(o->oid); it != d.scalars.end()) {
      add(it->second, "");
    }
  }
  custom_wrap_ = std::move(wraps);
}

void SnmpDeviceState::render(const std::string& labels, std::map<std::string, std::string>& out) const {
  const std::string sep = labels.empty() ? "" : ",";
  line(out, kF[0], labels, up_ ? 1.0 : 0.0);
  if (polled_) line(out, kF[1], labels, duration_);
  line(out, kF[2], labels, polls_);
  for (const auto& k : kErrorKinds) {
    auto it = errors_.find(k);
    line(out, kF[3], labels + sep + label("kind", k), it == errors_.end() ? 0 : it->second);
  }
  line(out, kF[4], labels, sent_);
  line(out, kF[5], labels, received_);
  if (max_rep_ > 0) line(out, kF[6], labels, static_cast<double>(max_rep_));
  if (ticks_) line(out, kF[7], labels, static_cast<double>(*ticks_) / 100.0);
  line(out, kF[8], labels, reboots_);
  if (have_system_)
    line(out, kF[9],
         labels + sep + label("sys_descr", sys_descr_) + "," + label("sys_name", sys_name_) + "," +
             label("sys_object_id", sys_oid_),
         1.0);
  for (const auto& [idx, f] : ifaces_) {
    const std::string l = labels + sep + label("if_alias", f.alias) + "," +
                          label("if_index", std::to_string(idx)) + "," + label("if_name", f.name);
    line(out, kF[10], l, f.oper);
    line(out, kF[11], l, f.admin);
    line(out, kF[12], l, f.uplink ? 1.0 : 0.0);
    line(out, kF[13], l, f.speed_bps / 8);
    line(out, kF[14], l, f.hc ? 1.0 : 0.0);
    for (int k = 0; k < 4; ++k)
      if (f.src[k]) line(out, kTraffic[k], l, f.total[k]);
    for (int k = 0; k < 4; ++k)
      if (f.err[k].have) line(out, kErrs[k], l, f.err[k].total);
  }
  for (const auto& c : custom_)
    line(out, c.family, labels + (c.labels.empty() ? "" : sep + c.labels), c.value);
}

// ---- Exposition ----------------------------------------------------------------------------------
namespace {

class SnmpExposition final : public Exposition {
 public:
  using Text = std::map<std::string, std::string>;
  void set(const std::string& key, std::shared_ptr<const Text> t) {
    std::lock_guard<std::mutex> l(mu_);
    if (t)
      by_key_[key] = std::move(t);
    else
      by_key_.erase(key);
  }
  // Custom families (name -> type, help), replaced on reload.
  void set_custom(std::map<std::string, std::pair<std::string, std::string>> c) {
    std::lock_guard<std::mutex> l(mu_);
    custom_ = std::make_shared<const decltype(c)>(std::move(c));
  }
  void render(std::string& out) const override {
    std::vector<std::shared_ptr<const Text>> texts;
    std::shared_ptr<const std::map<std::string, std::pair<std::string, std::string>>> custom;
    {
      std::lock_guard<std::mutex> l(mu_);
      texts.reserve(by_key_.size());
      for (const auto& [k, t] : by_key_) texts.push_back(t);
      custom = custom_;
    }
    const auto each = [&](const std::string& name, const Family& f) {
      bool header = false;
      for (const auto& t : texts) {
        auto it = t->find(name);
        if (it == t->end()) continue;
        if (!header) append_header(out, name, f.type, f.help);
        header = true;
        out += it->second;
      }
    };
    for (const char* name : kF) each(name, family(name));
    if (custom)
      for (const auto& [name, th] : *custom) each(name, Family{name, th.first, th.second});
    append_header(out, kLoadFamilies[0]);
    out += std::string(kLoadFamilies[0]) + " " + std::to_string(in_flight_.load()) + "\n";
    append_header(out, kLoadFamilies[1]);
    out += std::string(kLoadFamilies[1]) + " " + std::to_string(waiting_.load()) + "\n";
  }
  void set_load(int in_flight, std::size_t waiting) {
    in_flight_ = in_flight;
    waiting_ = waiting;
  }

 private:
  std::atomic<int> in_flight_{0};
  std::atomic<std::size_t> waiting_{0};
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Text>> by_key_;
  std::shared_ptr<const std::map<std::string, std::pair<std::string, std::string>>> custom_;
};

// ---- net-snmp glue -------------------------------------------------------------------------------
SnmpVal to_val(const netsnmp_variable_list* v) {
  SnmpVal r;
  switch (v->type) {
    case ASN_INTEGER:
      r.type = SnmpVal::T::Int;
      r.i = *v->val.integer;
      break;
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
      r.type = v->type == ASN_COUNTER ? SnmpVal::T::Counter32
               : v->type == ASN_GAUGE ? SnmpVal::T::Unsigned
                                      : SnmpVal::T::Ticks;
      r.u = static_cast<std::uint32_t>(*v->val.integer);
      break;
    case ASN_COUNTER64:
      r.type = SnmpVal::T::Counter64;
      r.u =
          (static_cast<std::uint64_t>(v->val.counter64->high) << 32) | (v->val.counter64->low & 0xffffffffu);
      break;
    case ASN_OCTET_STR:  // no use for more: every string is clipped further where it is used
      r.type = SnmpVal::T::String;
      r.s.assign(reinterpret_cast<const char*>(v->val.string), std::min(v->val_len, kMaxValueBytes));
      break;
    case ASN_OBJECT_ID: {
      r.type = SnmpVal::T::ObjectId;
      const std::size_t n = v->val_len / sizeof(oid);
      for (std::size_t i = 0; i < n; ++i) r.s += (i ? "." : "") + std::to_string(v->val.objid[i]);
      break;
    }
    case SNMP_NOSUCHOBJECT:
    case SNMP_NOSUCHINSTANCE:
    case SNMP_ENDOFMIBVIEW:
      r.type = SnmpVal::T::Missing;
      break;
    default:
      r.type = SnmpVal::T::Other;
  }
  return r;
}

Oid to_oid(const oid* o, std::size_t n) {
  Oid r(n);
  for (std::size_t i = 0; i < n; ++i) r[i] = static_cast<std::uint32_t>(o[i]);
  return r;
}

void add_null(netsnmp_pdu* pdu, const Oid& o) {
  std::vector<oid> x(o.begin(), o.end());
  snmp_add_null_var(pdu, x.data(), x.size());
}

// (Re)creates the USM user of a session from its Ku and engine ID. net-snmp keeps one global user per
// (engine ID, name) and would otherwise keep using the keys of whichever profile created it first.
bool make_user(netsnmp_session* ss) {
  if (usmUser* u = usm_get_user(ss->securityEngineID, ss->securityEngineIDLen, ss->securityName)) {
    usm_remove_user(u);
    usm_free_user(u);
  }
  ss->flags &= ~static_cast<unsigned long>(SNMP_FLAGS_USER_CREATED);  // else creating is a no-op
  return create_user_from_session(ss) == SNMPERR_SUCCESS;
}

struct KeySet {
  std::vector<u_char> auth_ku, priv_ku;
};

void init_net_snmp() {
  static bool done = false;
  if (done) return;
  done = true;
  // net-snmp mallocs and frees a 64 KB receive buffer for every datagram it reads; freeing a chunk
  // that large from the heap makes glibc consolidate its fastbins and trim the heap every time (a
  // quarter of the poller's CPU in perf). Served by mmap instead, it costs two cheap syscalls.
  mallopt(M_MMAP_THRESHOLD, 32 << 10);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_LOAD_HOST_FILES, 1);
  netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
  // net-snmp keeps a persistent directory (certificate indexes) that init_snmp creates, printing
  // "Created directory: /var/lib/snmp/..." on stderr. Made here, silently: under the service's
  // state directory (systemd StateDirectory=), else a private one in /tmp.
  static std::string dir;
  if (const char* s = std::getenv("STATE_DIRECTORY"); s && *s)
    dir = std::string(s, std::strcspn(s, ":")) + "/net-snmp";
  else
    dir = "/tmp/siteprobe-net-snmp-" + std::to_string(geteuid());
  struct stat st {};
  const bool ours = (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) && lstat(dir.c_str(), &st) == 0 &&
                    S_ISDIR(st.st_mode) && st.st_uid == geteuid();
  if (ours) {
    mkdir((dir + "/cert_indexes").c_str(), 0700);
    netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_PERSISTENT_DIR, dir.c_str());
  }
  setenv("MIBS", "", 0);  // numeric OIDs only: load no MIB files
  snmp_disable_log();
  // Otherwise net-snmp writes some messages ("Authentication failed for ...") to stderr, outside
  // siteprobe's logfmt: failures are counted by kind instead.
  netsnmp_register_loghandler(NETSNMP_LOGHANDLER_NONE, LOG_DEBUG);
  init_snmp("siteprobe");
}

const oid* auth_proto(const std::string& p, std::size_t& len) {
  len = USM_AUTH_PROTO_SHA_LEN;
  if (p == "MD5") return usmHMACMD5AuthProtocol;
  if (p == "SHA-224") return usmHMAC128SHA224AuthProtocol;
  if (p == "SHA-256") return usmHMAC192SHA256AuthProtocol;
  if (p == "SHA-384") return usmHMAC256SHA384AuthProtocol;
  if (p == "SHA-512") return usmHMAC384SHA512AuthProtocol;
  return usmHMACSHA1AuthProtocol;
}

const oid* priv_proto(const std::string& p, std::size_t& len) {
  len = USM_PRIV_PROTO_AES_LEN;
  if (p == "DES") return usmDESPrivProtocol;
  if (p == "AES-192") return len = 9, usmAES192PrivProtocol;
  if (p == "AES-256") return len = 9, usmAES256PrivProtocol;
  return usmAESPrivProtocol;
}

class SnmpProber final : public Prober {
 public:
  explicit SnmpProber(uv_loop_t* loop) : loop_(loop), x_(std::make_shared<SnmpExposition>()) {
    init_net_snmp();
    uv_timer_init(loop_, &sched_);
    uv_timer_init(loop_, &io_);
    sched_.data = io_.data = this;
  }

  std::shared_ptr<const Exposition> exposition() const override { return x_; }

  void set_targets(const Config& config, const std::vector<Target>& targets) override;
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    if (auto it = devs_.find(key); it != devs_.end()) it->second->addr = addr;
  }
  void close() override {
    if (closed_) return;
    closed_ = true;
    std::vector<Poll*> polls;
    for (auto& [k, d] : devs_)
      if (d->poll) polls.push_back(d->poll);
    for (auto* p : polls) finish(p, true);
    uv_close(reinterpret_cast<uv_handle_t*>(&sched_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&io_), nullptr);
  }

 private:
  enum class Step { Discover, Get, Walk, Done };
  struct Poll;
  struct Dev {
    Target target;
    std::string labels;  // rendered
    SnmpSettings settings;
    const AuthProfile* auth = nullptr;
    SnmpDeviceState::Settings state_settings;
    sockaddr_storage addr{};
    std::int64_t due = 0;  // uv_now ms of the next poll
    Poll* poll = nullptr;
    bool waiting = false;  // in waiting_: due, but the in-flight cap is reached
    std::string engine_id;
    int max_rep = 0;
    bool need32 = false;  // some interface has no HC counters: walk the 32-bit columns too
    std::string usm_key;  // v3: user@address:port, one poll at a time per key (see run_due)
    SnmpDeviceState state;
  };
  struct Column {
    Oid base, cur;
    bool done = false;
  };
  struct Poll {
    SnmpProber* self;
    Dev* dev;
    void* sess = nullptr;
    uv_poll_t* io = nullptr;
    Step step = Step::Get;
    long reqid = 0;
    std::uint64_t started = 0, deadline = 0, wake = 0;  // uv_now ms
    std::uint64_t started_ns = uv_hrtime();
    std::vector<Oid> scalars;
    std::vector<Column> cols;
    PollData data;
    bool resent_time = false;
    // Set by the net-snmp callback, acted on after snmp_sess_read2/timeout returns.
    enum class Next { Wait, Send, Fail, Done } next = Next::Wait;
    std::string fail_kind;
    std::uint64_t sent = 0, received = 0;
    std::size_t bytes = 0;  // decoded so far, bounded by kMaxPollBytes
    int max_rep = 0;        // of the GETBULK in flight
    bool ok = false;
  };

  void schedule(Dev& d, std::int64_t now);
  void run_due();
  void start(Dev& d);
  void send(Poll* p);
  void after_io(Poll* p);
  void finish(Poll* p, bool aborted);
  void publish(Dev& d) {
    auto t = std::make_shared<SnmpExposition::Text>();
    d.state.render(d.labels, *t);
    x_->set(d.target.key, std::move(t));
  }
  void arm_io();
  // Reads the datagram waiting on the poll's socket and acts on it.
  void read(Poll* p) {
    netsnmp_large_fd_set fds;
    netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
    netsnmp_large_fd_setfd(snmp_sess_transport(p->sess)->sock, &fds);
    // -1: a datagram net-snmp could not use (garbage, truncated, wrong version or community).
    const int rc = snmp_sess_read2(p->sess, &fds);
    netsnmp_large_fd_set_cleanup(&fds);
    if (rc != 0) p->dev->state.count_error("decode");
    after_io(p);
  }
  // Whether a datagram is waiting (never blocks). Checked before a timeout or the deadline is acted
  // on: libuv runs timers before I/O, so after a stall an answer already here would lose to them.
  static bool readable(Poll* p) {
    pollfd pfd{snmp_sess_transport(p->sess)->sock, POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
  }
  static int on_response(int op, netsnmp_session* ss, int reqid, netsnmp_pdu* pdu, void* magic);
  void handle(Poll* p, int op, netsnmp_pdu* pdu);
  void walk_reply(Poll* p, netsnmp_pdu* pdu);
  // Value bytes only: OIDs are bounded already by rows x columns x net-snmp's MAX_OID_LEN. The
  // budget grows with max_interfaces, so a chassis allowed many rows is not cut short by it.
  static bool count_bytes(Poll* p, const netsnmp_variable_list* v) {
    p->bytes += std::min(v->val_len, kMaxValueBytes) + 8;
    const auto scale = static_cast<std::size_t>(std::max(1, p->dev->settings.max_interfaces / 1024));
    return p->bytes <= kMaxPollBytes * scale;
  }

  uv_loop_t* loop_;
  std::shared_ptr<SnmpExposition> x_;
  uv_timer_t sched_{}, io_{};
  std::unordered_map<std::string, std::unique_ptr<Dev>> devs_;
  std::set<std::pair<std::int64_t, Dev*>> due_;
  std::deque<Dev*> waiting_;
  std::set<std::string> usm_busy_;  // usm_key of the v3 polls running
  std::set<std::pair<std::uint64_t, Poll*>> wake_;
  std::map<std::string, KeySet> keys_;  // by auth profile name
  int max_inflight_ = 256, inflight_ = 0;
  bool closed_ = false, in_run_due_ = false;
};

void SnmpProber::set_targets(const Config& config, const std::vector<Target>& targets) {
  max_inflight_ = config.snmp_max_inflight;
  std::map<std::string, std::pair<std::string, std::string>> custom;
  for (const auto& [name, objs] : config.snmp_modules)
    for (const auto& o : objs)
      custom["siteprobe_snmp_" + o.name] = {
          o.type == "counter" ? "counter" : "gauge",
          o.help.empty() ? "Custom SNMP object " + dotted(o.oid) + "." : o.help};
  x_->set_custom(std::move(custom));
  // Localized keys are derived per poll from Ku; Ku (a 1 MB hash of the passphrase) once per profile.
  keys_.clear();
  for (const auto& [name, a] : config.auth) {
    if (a.version != "3" || a.security_level == "noAuthNoPriv") continue;
    std::size_t plen = 0;
    const oid* proto = auth_proto(a.auth_protocol, plen);
    KeySet k;
    const auto ku = [&](const std::string& pass, std::vector<u_char>& out) {
      out.resize(USM_AUTH_KU_LEN);
      std::size_t len = out.size();
      if (generate_Ku(proto, static_cast<u_int>(plen), reinterpret_cast<const u_char*>(pass.data()),
                      pass.size(), out.data(), &len) != SNMPERR_SUCCESS)
        len = 0;
      out.resize(len);
    };
    ku(a.auth_passphrase, k.auth_ku);
    if (a.security_level == "authPriv") ku(a.priv_passphrase, k.priv_ku);
    keys_[name] = std::move(k);
  }

  const std::int64_t now = static_cast<std::int64_t>(uv_now(loop_));
  std::unordered_map<std::string, std::unique_ptr<Dev>> next;
  for (const auto& t : targets) {
    if (!t.device || !t.device->snmp) continue;
    std::unique_ptr<Dev> d;
    const std::string labels = render_labels(t.labels);
    if (auto it = devs_.find(t.key); it != devs_.end() && it->second->labels == labels) {
      d = std::move(it->second);
      devs_.erase(it);
    } else {
      d = std::make_unique<Dev>();
      d->labels = labels;
    }
    const bool auth_changed =
        !d->auth || d->auth->name != t.device->snmp->auth || d->settings.port != t.device->snmp->port;
    const Duration old_interval = d->settings.interval;
    d->target = t;
    d->settings = *t.device->snmp;
    d->auth = &config.auth.at(d->settings.auth);
    if (auth_changed) d->engine_id.clear();
    d->usm_key = d->auth->version == "3"
                     ? d->auth->username + "@" + t.device->address + ":" + std::to_string(d->settings.port)
                     : "";
    if (d->max_rep == 0 || d->max_rep > d->settings.max_repetitions) d->max_rep = d->settings.max_repetitions;
    d->state_settings = {d->settings.interfaces_include, d->settings.interfaces_exclude, d->settings.uplink};
    for (const auto& m : d->settings.modules)
      if (auto it = config.snmp_modules.find(m); it != config.snmp_modules.end())
        for (const auto& o : it->second) d->state_settings.custom.push_back(&o);
    if (d->due == 0 || old_interval != d->settings.interval) {  // new, or a new interval: (re)splay
      if (d->due) due_.erase({d->due, d.get()});
      const auto iv = std::chrono::duration_cast<std::chrono::milliseconds>(d->settings.interval).count();
      d->due = now + splay_offset_ns(t.key, iv * 1000000) / 1000000;
      due_.insert({d->due, d.get()});
    }
    publish(*d);
    next[t.key] = std::move(d);
  }
  // Devices that left: abort their polls, drop their series.
  for (auto& [key, d] : devs_) {
    if (d->poll) finish(d->poll, true);
    due_.erase({d->due, d.get()});
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), d.get()), waiting_.end());
    x_->set(key, nullptr);
  }
  devs_ = std::move(next);
  // Not now: the daemon sets the addresses right after this call.
  uv_timer_start(
      &sched_, [](uv_timer_t* t) { static_cast<SnmpProber*>(t->data)->run_due(); }, 0, 0);
}

void SnmpProber::schedule(Dev& d, std::int64_t now) {
  const auto iv = std::chrono::duration_cast<std::chrono::milliseconds>(d.settings.interval).count();
  d.due += iv;
  if (d.due <= now) d.due += ((now - d.due) / iv + 1) * iv;  // fell behind: skip, keep the grid
  due_.insert({d.due, &d});
}

void SnmpProber::run_due() {
  if (closed_ || in_run_due_) return;
  in_run_due_ = true;
  const auto now = static_cast<std::int64_t>(uv_now(loop_));
  while (!due_.empty() && due_.begin()->first <= now) {
    Dev* d = due_.begin()->second;
    due_.erase(due_.begin());
    schedule(*d, now);
    if (d->poll || d->waiting) {
      d->state.failed("timeout");  // still busy a whole interval later: cannot happen with a deadline
      continue;
    }
    d->waiting = true;
    waiting_.push_back(d);
  }
  for (auto it = waiting_.begin(); it != waiting_.end() && inflight_ < max_inflight_;) {
    Dev* d = *it;
    // net-snmp keeps one USM user per engine and name, process-wide: two polls of one agent's user
    // with other keys (two profiles, or a wrong passphrase) must not overlap, or one spoils the other.
    if (!d->usm_key.empty() && usm_busy_.count(d->usm_key)) {
      ++it;
      continue;
    }
    it = waiting_.erase(it);
    d->waiting = false;
    start(*d);
  }
  x_->set_load(inflight_, waiting_.size());
  in_run_due_ = false;
  if (!due_.empty()) {
    const auto wait = std::max<std::int64_t>(0, due_.begin()->first - now);
    uv_timer_start(
        &sched_, [](uv_timer_t* t) { static_cast<SnmpProber*>(t->data)->run_due(); },
        static_cast<std::uint64_t>(wait), 0);
  }
}

void SnmpProber::start(Dev& d) {
  // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): the device and libuv hold it until finish()
  auto* p = new Poll{};
  p->self = this;
  p->dev = &d;
  p->started = uv_now(loop_);
  const auto iv = std::chrono::duration_cast<std::chrono::milliseconds>(d.settings.interval).count();
  p->deadline = p->started + static_cast<std::uint64_t>(iv * 9 / 10);
  d.poll = p;
  if (!d.usm_key.empty()) usm_busy_.insert(d.usm_key);
  ++inflight_;
  const auto fail = [&](const char* kind) {
    p->next = Poll::Next::Fail;
    p->fail_kind = kind;
    finish(p, false);
  };
  if (d.addr.ss_family != AF_INET && d.addr.ss_family != AF_INET6) return fail("unresolved");

  // What to ask for.
  bool interfaces = false;
  for (const auto& m : d.settings.modules) {
    if (m == "system") p->scalars.insert(p->scalars.end(), {kSysUpTime, kSysName, kSysDescr, kSysObjectID});
    interfaces |= m == "interfaces";
  }
  if (interfaces) {
    const bool v1 = d.auth->version == "1";
    for (auto c : {kIfName, kIfAlias}) p->cols.push_back({col(kIfXTable, c), col(kIfXTable, c)});
    if (!v1)
      for (auto c : {kIfHCInOctets, kIfHCOutOctets, kIfHCInUcast, kIfHCOutUcast, kIfHighSpeed})
        p->cols.push_back({col(kIfXTable, c), col(kIfXTable, c)});
    for (auto c : {kIfAdmin, kIfOper, kIfInErrors, kIfOutErrors, kIfInDiscards, kIfOutDiscards})
      p->cols.push_back({col(kIfTable, c), col(kIfTable, c)});
    if (v1 || d.need32)
      for (auto c : {kIfDescr, kIfSpeed, kIfInOctets, kIfOutOctets, kIfInUcast, kIfOutUcast})
        p->cols.push_back({col(kIfTable, c), col(kIfTable, c)});
  }
  for (const SnmpObject* o : d.state_settings.custom) {
    if (o->walk)
      p->cols.push_back({o->oid, o->oid});
    else
      p->scalars.push_back(o->oid);
  }
  std::sort(p->scalars.begin(), p->scalars.end());
  p->scalars.erase(std::unique(p->scalars.begin(), p->scalars.end()), p->scalars.end());

  // The session: one socket for this poll only.
  char host[INET6_ADDRSTRLEN] = "";
  if (d.addr.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&d.addr)->sin_addr, host, sizeof host);
  else
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&d.addr)->sin6_addr, host, sizeof host);
  const std::string peer = d.addr.ss_family == AF_INET
                               ? "udp:" + std::string(host) + ":" + std::to_string(d.settings.port)
                               : "udp6:[" + std::string(host) + "]:" + std::to_string(d.settings.port);
  netsnmp_session s;
  snmp_sess_init(&s);
  std::vector<char> peername(peer.begin(), peer.end());
  peername.push_back('\0');
  s.peername = peername.data();
  s.timeout =
      static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(d.settings.timeout).count());
  s.retries = d.settings.retries;
  s.flags |= SNMP_FLAGS_DONT_PROBE;
  const AuthProfile& a = *d.auth;
  std::vector<u_char> community(a.community.begin(), a.community.end());
  std::vector<char> user(a.username.begin(), a.username.end());
  user.push_back('\0');
  std::vector<u_char> engine(d.engine_id.begin(), d.engine_id.end());
  if (a.version != "3") {
    s.version = a.version == "1" ? SNMP_VERSION_1 : SNMP_VERSION_2c;
    s.community = community.data();
    s.community_len = community.size();
  } else {
    s.version = SNMP_VERSION_3;
    s.securityName = user.data();
    s.securityNameLen = a.username.size();
    s.securityModel = SNMP_SEC_MODEL_USM;
    s.securityLevel = a.security_level == "noAuthNoPriv" ? SNMP_SEC_LEVEL_NOAUTH
                      : a.security_level == "authNoPriv" ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                         : SNMP_SEC_LEVEL_AUTHPRIV;
    if (s.securityLevel != SNMP_SEC_LEVEL_NOAUTH) {
      const KeySet& k = keys_[a.name];
      std::size_t len = 0;
      s.securityAuthProto = const_cast<oid*>(auth_proto(a.auth_protocol, len));
      s.securityAuthProtoLen = len;
      std::memcpy(s.securityAuthKey, k.auth_ku.data(), k.auth_ku.size());
      s.securityAuthKeyLen = k.auth_ku.size();
      if (s.securityLevel == SNMP_SEC_LEVEL_AUTHPRIV) {
        s.securityPrivProto = const_cast<oid*>(priv_proto(a.priv_protocol, len));
        s.securityPrivProtoLen = len;
        std::memcpy(s.securityPrivKey, k.priv_ku.data(), k.priv_ku.size());
        s.securityPrivKeyLen = k.priv_ku.size();
      }
    }
    if (!engine.empty()) {
      s.securityEngineID = engine.data();
      s.securityEngineIDLen = engine.size();
      s.contextEngineID = engine.data();
      s.contextEngineIDLen = engine.size();
    }
  }
  p->sess = snmp_sess_open(&s);
  if (!p->sess) return fail("send");
  // snmp_sess_open drops the flag; without it the first v3 send runs net-snmp's engine ID probe
  // synchronously, blocking the loop for timeout * retries when the agent is silent.
  snmp_sess_session(p->sess)->flags |= SNMP_FLAGS_DONT_PROBE;
  if (a.version == "3" && !d.engine_id.empty() && !make_user(snmp_sess_session(p->sess))) return fail("auth");
  netsnmp_transport* t = snmp_sess_transport(p->sess);
  p->io = new uv_poll_t{};  // NOLINT(cppcoreguidelines-owning-memory): freed in finish()'s close callback
  p->io->data = p;
  if (!t || uv_poll_init_socket(loop_, p->io, t->sock) != 0) {
    delete p->io;  // NOLINT(cppcoreguidelines-owning-memory)
    p->io = nullptr;
    return fail("send");
  }
  uv_poll_start(p->io, UV_READABLE, [](uv_poll_t* h, int, int) noexcept {
    auto* poll = static_cast<Poll*>(h->data);
    poll->self->read(poll);
  });
  p->step = a.version == "3" && d.engine_id.empty() ? Step::Discover
            : !p->scalars.empty()                   ? Step::Get
                                                    : Step::Walk;
  if (p->step == Step::Walk && p->cols.empty()) {
    p->ok = true;
    return finish(p, false);
  }
  send(p);
}

void SnmpProber::send(Poll* p) {
  Dev& d = *p->dev;
  netsnmp_pdu* pdu = nullptr;
  if (p->step == Step::Discover) {
    pdu = snmp_pdu_create(SNMP_MSG_GET);
    pdu->version = SNMP_VERSION_3;
    pdu->securityName = strdup("");
    pdu->securityNameLen = 0;
    pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
    pdu->securityModel = SNMP_SEC_MODEL_USM;
  } else if (p->step == Step::Get) {
    pdu = snmp_pdu_create(SNMP_MSG_GET);
    for (const auto& o : p->scalars) add_null(pdu, o);
  } else {
    const bool v1 = d.auth->version == "1";
    pdu = snmp_pdu_create(v1 ? SNMP_MSG_GETNEXT : SNMP_MSG_GETBULK);
    if (!v1) {
      pdu->errstat = 0;                        // non-repeaters
      pdu->errindex = p->max_rep = d.max_rep;  // max-repetitions
    }
    for (const auto& c : p->cols)
      if (!c.done) add_null(pdu, c.cur);
  }
  p->next = Poll::Next::Wait;
  p->reqid = pdu->reqid;
  if (!snmp_sess_async_send(p->sess, pdu, &SnmpProber::on_response, p)) {
    snmp_free_pdu(pdu);
    p->next = Poll::Next::Fail;
    p->fail_kind = "send";
  } else {
    ++p->sent;
  }
  after_io(p);
}

int SnmpProber::on_response(int op, netsnmp_session*, int reqid, netsnmp_pdu* pdu, void* magic) {
  auto* p = static_cast<Poll*>(magic);
  if (reqid == p->reqid) p->self->handle(p, op, pdu);
  return 1;
}

void SnmpProber::handle(Poll* p, int op, netsnmp_pdu* pdu) {
  Dev& d = *p->dev;
  const auto fail = [&](const char* kind) {
    p->next = Poll::Next::Fail;
    p->fail_kind = kind;
  };
  if (op == NETSNMP_CALLBACK_OP_RESEND) {
    ++p->sent;
    return;
  }
  if (op == NETSNMP_CALLBACK_OP_TIMED_OUT) {
    if (p->step == Step::Walk && d.max_rep > 1) d.max_rep = std::max(1, d.max_rep / 2);
    return fail("timeout");
  }
  if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || !pdu) return fail("send");
  ++p->received;
  if (pdu->command == SNMP_MSG_REPORT) {
    if (p->step == Step::Discover && pdu->securityEngineIDLen > 0) {
      d.engine_id.assign(reinterpret_cast<const char*>(pdu->securityEngineID), pdu->securityEngineIDLen);
      netsnmp_session* ss = snmp_sess_session(p->sess);
      SNMP_FREE(ss->securityEngineID);
      SNMP_FREE(ss->contextEngineID);
      ss->securityEngineID =
          static_cast<u_char*>(netsnmp_memdup(pdu->securityEngineID, pdu->securityEngineIDLen));
      ss->securityEngineIDLen = pdu->securityEngineIDLen;
      ss->contextEngineID =
          static_cast<u_char*>(netsnmp_memdup(pdu->securityEngineID, pdu->securityEngineIDLen));
      ss->contextEngineIDLen = pdu->securityEngineIDLen;
      if (!make_user(ss)) return fail("auth");
      p->step = !p->scalars.empty() ? Step::Get : Step::Walk;
      p->next = Poll::Next::Send;
      return;
    }
    const int type = snmpv3_get_report_type(pdu);
    if (type == SNMPERR_NOT_IN_TIME_WINDOW && !p->resent_time) {  // engine time now synced: once more
      p->resent_time = true;
      p->next = Poll::Next::Send;
      return;
    }
    if (type == SNMPERR_UNKNOWN_ENG_ID) d.engine_id.clear();  // agent replaced: discover again next time
    return fail("auth");
  }
  if (pdu->errstat == SNMP_ERR_TOOBIG) {
    if (p->step == Step::Walk && d.max_rep > 1) {
      d.max_rep = std::max(1, d.max_rep / 2);
      d.state.count_error("too_big");
      p->next = Poll::Next::Send;
      return;
    }
    return fail("too_big");
  }
  if (pdu->errstat == SNMP_ERR_NOSUCHNAME && pdu->errindex > 0) {  // v1: drop that varbind, ask again
    d.state.count_error("no_such_name");
    if (p->step == Step::Get) {
      const auto i = static_cast<std::size_t>(pdu->errindex - 1);
      if (i >= p->scalars.size()) return fail("decode");
      p->scalars.erase(p->scalars.begin() + static_cast<long>(i));
      if (p->scalars.empty()) p->step = p->cols.empty() ? Step::Done : Step::Walk;
    } else {
      std::size_t k = 0;
      for (auto& c : p->cols)
        if (!c.done && ++k == static_cast<std::size_t>(pdu->errindex)) c.done = true;
      if (std::all_of(p->cols.begin(), p->cols.end(), [](const Column& c) { return c.done; }))
        p->step = Step::Done;
    }
    p->next = p->step == Step::Done ? Poll::Next::Done : Poll::Next::Send;
    return;
  }
  if (pdu->errstat != SNMP_ERR_NOERROR) return fail("error_status");
  if (p->step == Step::Get) {
    // Exactly what was asked: one varbind per scalar, by name. Anything else is not kept.
    std::size_t missing = 0, n = 0;
    for (auto* v = pdu->variables; v; v = v->next_variable)
      if (++n > p->scalars.size()) return fail("oversized");
    for (auto* v = pdu->variables; v; v = v->next_variable) {
      Oid o = to_oid(v->name, v->name_length);
      if (!std::binary_search(p->scalars.begin(), p->scalars.end(), o)) return fail("decode");
      if (!count_bytes(p, v)) return fail("oversized");
      SnmpVal val = to_val(v);
      missing += val.type == SnmpVal::T::Missing;
      p->data.scalars[std::move(o)] = std::move(val);
    }
    if (missing) d.state.count_error("no_such_name", missing);
    p->step = p->cols.empty() ? Step::Done : Step::Walk;
    p->next = p->step == Step::Done ? Poll::Next::Done : Poll::Next::Send;
    return;
  }
  if (p->step == Step::Walk) return walk_reply(p, pdu);
  fail("decode");
}

void SnmpProber::walk_reply(Poll* p, netsnmp_pdu* pdu) {
  const auto fail = [&](const char* kind) {
    p->next = Poll::Next::Fail;
    p->fail_kind = kind;
  };
  std::vector<Column*> active;
  for (auto& c : p->cols)
    if (!c.done) active.push_back(&c);
  // At most what was asked: max-repetitions rows of each active column (one row for GETNEXT).
  const std::size_t asked =
      active.size() * (p->dev->auth->version == "1" ? 1 : static_cast<std::size_t>(p->max_rep));
  std::size_t n = 0;
  for (auto* v = pdu->variables; v; v = v->next_variable)
    if (++n > asked) return fail("oversized");
  if (n == 0) return fail("decode");  // an empty response would never end the walk
  std::size_t i = 0;
  for (auto* v = pdu->variables; v; v = v->next_variable, ++i) {
    Column& c = *active[i % active.size()];
    if (c.done) continue;
    const Oid o = to_oid(v->name, v->name_length);
    if (v->type == SNMP_ENDOFMIBVIEW || o.size() <= c.base.size() ||
        !std::equal(c.base.begin(), c.base.end(), o.begin())) {
      c.done = true;
      continue;
    }
    if (!(o > c.cur)) {  // an agent that does not advance would loop forever
      c.done = true;
      p->dev->state.count_error("not_increasing");
      continue;
    }
    c.cur = o;
    if (!count_bytes(p, v)) return fail("oversized");
    auto& rows = p->data.columns[c.base];
    rows[Oid(o.begin() + static_cast<long>(c.base.size()), o.end())] = to_val(v);
    if (rows.size() > static_cast<std::size_t>(p->dev->settings.max_interfaces)) return fail("too_many_rows");
  }
  const bool all = std::all_of(p->cols.begin(), p->cols.end(), [](const Column& c) { return c.done; });
  p->next = all ? Poll::Next::Done : Poll::Next::Send;
  if (all) p->step = Step::Done;
}

void SnmpProber::after_io(Poll* p) {
  switch (p->next) {
    case Poll::Next::Send:
      return send(p);
    case Poll::Next::Done:
      p->ok = true;
      return finish(p, false);
    case Poll::Next::Fail:
      return finish(p, false);
    case Poll::Next::Wait:
      break;
  }
  // Still waiting: when does net-snmp want to retransmit or give up, and when is the deadline?
  int numfds = 0, block = 1;
  timeval tv{};
  netsnmp_large_fd_set fds;
  netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
  snmp_sess_select_info2_flags(p->sess, &numfds, &fds, &tv, &block, NETSNMP_SELECT_NOALARMS);
  netsnmp_large_fd_set_cleanup(&fds);
  std::uint64_t wake = p->deadline;
  if (!block)
    wake = std::min<std::uint64_t>(wake, uv_now(loop_) + static_cast<std::uint64_t>(tv.tv_sec) * 1000 +
                                             static_cast<std::uint64_t>(tv.tv_usec + 999) / 1000);
  if (p->wake) wake_.erase({p->wake, p});
  p->wake = wake;
  wake_.insert({wake, p});
  arm_io();
}

void SnmpProber::arm_io() {
  if (closed_) return;
  if (wake_.empty()) {
    uv_timer_stop(&io_);
    return;
  }
  const std::uint64_t now = uv_now(loop_), at = wake_.begin()->first;
  uv_timer_start(
      &io_,
      [](uv_timer_t* t) {
        auto* self = static_cast<SnmpProber*>(t->data);
        const std::uint64_t now2 = uv_now(self->loop_);
        std::vector<Poll*> due;
        for (auto it = self->wake_.begin(); it != self->wake_.end() && it->first <= now2; ++it)
          due.push_back(it->second);
        for (Poll* p : due) {
          self->wake_.erase({p->wake, p});
          p->wake = 0;
          if (p->io && readable(p)) {
            self->read(p);
            continue;
          }
          if (now2 >= p->deadline) {
            p->next = Poll::Next::Fail;
            p->fail_kind = "timeout";
          } else {
            snmp_sess_timeout(p->sess);
          }
          self->after_io(p);
        }
        self->arm_io();
      },
      at > now ? at - now : 0, 0);
}

void SnmpProber::finish(Poll* p, bool aborted) {
  Dev& d = *p->dev;
  if (p->wake) wake_.erase({p->wake, p});
  // Closing the session calls back for its pending requests (with this Poll as magic): no reqid
  // matches any more, and the Poll lives until the session is closed.
  p->reqid = -1;
  if (p->io) {
    uv_poll_stop(p->io);
    // The session (and its socket) is closed only once libuv has let go of the fd.
    p->io->data = p;
    uv_close(reinterpret_cast<uv_handle_t*>(p->io), [](uv_handle_t* h) {
      auto* poll = static_cast<Poll*>(h->data);
      snmp_sess_close(poll->sess);
      delete poll;                             // NOLINT(cppcoreguidelines-owning-memory)
      delete reinterpret_cast<uv_poll_t*>(h);  // NOLINT(cppcoreguidelines-owning-memory)
    });
  } else if (p->sess) {
    snmp_sess_close(p->sess);
  }
  d.poll = nullptr;
  if (!d.usm_key.empty()) usm_busy_.erase(d.usm_key);
  --inflight_;
  x_->set_load(inflight_, waiting_.size());
  if (!aborted) {
    const double now_s = static_cast<double>(uv_hrtime()) / 1e9;
    if (p->ok) {
      d.state.apply(p->data, d.state_settings, now_s);
      // Agents without ifXTable HC counters get the 32-bit columns walked from the next poll on.
      bool hc = false, any = false;
      for (const auto& [c, vals] : p->data.columns)
        if (c.size() == kIfXTable.size() + 1 && c.back() == kIfHCInOctets &&
            std::equal(kIfXTable.begin(), kIfXTable.end(), c.begin()))
          hc = !vals.empty();
      for (const auto& [c, vals] : p->data.columns)
        if (c.size() == kIfTable.size() + 1 && c.back() == kIfOper &&
            std::equal(kIfTable.begin(), kIfTable.end(), c.begin()))
          any = !vals.empty();
      if (any && !hc) d.need32 = true;
    } else {
      d.state.failed(p->fail_kind.empty() ? "timeout" : p->fail_kind);
      // A restarted agent may have a new engine ID or boot count: discover it again next time.
      d.engine_id.clear();
    }
    d.state.count_pdus(p->sent, p->received);
    d.state.poll_done(p->ok, static_cast<double>(uv_hrtime() - p->started_ns) / 1e9, d.max_rep);
    publish(d);
  }
  if (!p->io) delete p;  // NOLINT(cppcoreguidelines-owning-memory): else in the close callback above
  if (!closed_ && !aborted) run_due();
  arm_io();
}

}  // namespace

std::unique_ptr<Prober> make_snmp_prober(ProbeContext& ctx) {
  return std::make_unique<SnmpProber>(ctx.loop);
}

}  // namespace siteprobe::probes
