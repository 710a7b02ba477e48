// What one poll's answers mean: interface rows from the IF-MIB columns, counters, reboots and
// custom objects, folded into a device's state (SnmpDeviceState::apply). Pure: no sockets.
#include "probes/snmp_mib.h"

#include <array>
#include <cmath>
#include <cstdlib>

namespace siteprobe::probes {
namespace {

bool full_match(const std::vector<NamePattern>& res, const std::string& s) {
  return std::any_of(res.begin(), res.end(), [&](const NamePattern& r) { return r.matches(s); });
}

}  // namespace

std::string dotted(const Oid& o) {
  std::string s;
  for (auto x : o) s += (s.empty() ? "" : ".") + std::to_string(x);
  return s;
}

bool needs_32bit_columns(const PollData& d) {
  bool hc = false, any = false;
  for (const auto& [c, vals] : d.columns) {
    if (is_column(c, kIfXTable, kIfHCInOctets)) hc = !vals.empty();
    if (is_column(c, kIfTable, kIfOper)) any = !vals.empty();
  }
  return any && !hc;
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
    // A row's values by (table, column): ifTable's columns end at 22, ifXTable's at 19.
    constexpr std::uint32_t kCols = 32;
    using Row = std::array<const SnmpVal*, std::size_t{2} * kCols>;
    std::map<std::uint32_t, Row> rows;
    for (const auto& [c, vals] : d.columns) {
      int table = 0;
      if (is_column(c, kIfTable))
        table = 1;
      else if (is_column(c, kIfXTable))
        table = 2;
      if (!table || c.back() >= kCols) continue;
      for (const auto& [idx, v] : vals)
        if (idx.size() == 1 && v.type != SnmpVal::T::Missing)
          rows[idx[0]][(table - 1) * kCols + c.back()] = &v;
    }
    std::map<std::uint32_t, Iface> next;
    for (const auto& row : rows) {
      // Not a structured binding: lambdas may capture those only from C++20 (clang rejects it).
      const std::uint32_t ifindex = row.first;
      const auto& r = row.second;
      const auto get = [&](int t, std::uint32_t c) -> const SnmpVal* {
        return c < kCols ? r[(t - 1) * kCols + c] : nullptr;
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

std::vector<SnmpResult::Link> SnmpDeviceState::uplinks() const {
  std::vector<SnmpResult::Link> out;
  for (const auto& [index, f] : ifaces_)
    if (f.uplink && f.seen)
      out.push_back({f.name, static_cast<int>(f.oper), static_cast<int>(f.admin), f.speed_bps});
  return out;
}

}  // namespace siteprobe::probes
