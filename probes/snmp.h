// SNMP poller: net-snmp driven from the libuv loop.
//
// Each device is polled every `interval` on its splayed grid (probes/scheduler.h). A poll is a
// short sequence of requests on a session of its own, opened when the poll starts and closed when
// it ends, so open sockets are bounded by the global in-flight cap (global.snmp_max_inflight), not
// by the number of devices: v3 engine discovery (asynchronous, never net-snmp's blocking probe),
// one GET for the scalars (system group, custom scalars), then GETBULK walks (GETNEXT for v1) of
// only the needed table columns, several columns per request. Replies are read when the session's
// socket is readable (uv_poll_t); net-snmp's retransmissions and timeouts and the per-poll
// deadlines are driven by one timer, re-armed after every send, read and timeout.
//
// Files: snmp_mib (varbinds into interface rows and custom series, counter wraps, reboots),
// snmp_request (what a poll asks, and its state machine), snmp_schedule (when polls run, the cap),
// snmp_exposition (the text), snmp.cpp (sessions, sockets and timers). All but snmp.cpp are free
// of sockets and unit-tested. Threading: loop thread only, like all of net-snmp (its USM user list
// is process-global).
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/series.h"
#include "probes/probe.h"
#include "util/pattern.h"
#include "util/text.h"

namespace siteprobe::probes {

// A device's rendered series: family name -> its lines. Looked up by string_view (std::less<>).
using SnmpText = std::map<std::string, std::string, std::less<>>;

using Oid = std::vector<std::uint32_t>;

// What one agent can make siteprobe hold is bounded where it is decoded (docs/metrics.md#snmp-limits):
// a device that answers with more is an error of that poll, never memory or series without end.
constexpr std::size_t kMaxDisplayString = 255;  // ifName, ifAlias, sysName, sysDescr (DisplayString)
constexpr std::size_t kMaxValueBytes = 1024;    // any other OCTET STRING (custom info values)
constexpr std::size_t kMaxPollBytes = 4 << 20;  // value bytes per poll, per 1024 max_interfaces

// One value as the agent sent it.
struct SnmpVal {
  enum class T { Missing, Int, Unsigned, Counter32, Counter64, Ticks, String, ObjectId, Other };
  T type = T::Missing;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  std::string s;  // OCTET STRING bytes, or a dotted OID
  bool numeric() const {
    return type == T::Int || type == T::Unsigned || type == T::Counter32 || type == T::Counter64 ||
           type == T::Ticks;
  }
  double number() const { return type == T::Int ? static_cast<double>(i) : static_cast<double>(u); }
};

// What one poll collected: scalars by OID and walked columns by column OID, then row index.
struct PollData {
  std::map<Oid, SnmpVal> scalars;
  std::map<Oid, std::map<Oid, SnmpVal>> columns;  // column -> index suffix -> value
};

// A monotonic counter fed by an agent's 32-bit counter: adds the modular difference, so it
// survives a wrap. A reset (the agent rebooted, or a difference larger than `max_delta`, the most
// the link could carry since the last poll; 0 = unknown) restarts the agent's counter from 0, so its
// new value is added in full. Several wraps within one interval cannot be seen in a 32-bit counter:
// see docs/metrics.md for when that can happen.
struct WrapCounter {
  bool have = false;
  std::uint32_t last = 0;
  std::uint64_t total = 0;
  void update(std::uint32_t v, bool reset, double max_delta = 0) {
    const std::uint32_t d = static_cast<std::uint32_t>(v - last);
    if (!have)
      total = v;
    else if (reset || (max_delta > 0 && v < last && d > max_delta))
      total += v;
    else
      total += d;
    have = true;
    last = v;
  }
};

// Whether sysUpTime going from `prev` to `now` ticks (1/100 s) over `elapsed_s` seconds means the
// agent restarted. A decrease is a reboot unless the 32-bit tick counter wrapped (after 497 days):
// prev + elapsed reaches 2^32 and `now` is near where the wrap would land.
bool uptime_rebooted(std::uint32_t prev, std::uint32_t now, double elapsed_s);

// A device's state across polls: counters, reboot bookkeeping and the last values, and the text
// it renders. Pure: fed PollData, no sockets.
class SnmpDeviceState {
 public:
  struct Settings {  // compiled once per load, not per poll
    Settings() = default;
    Settings(const std::vector<std::string>& include, const std::vector<std::string>& exclude,
             const std::string& uplink);
    std::vector<NamePattern> include, exclude;  // on ifName as exported (full match)
    std::optional<NamePattern> uplink;
    std::vector<const SnmpObject*> custom;  // owned by the Config
  };
  // `labels` is the rendered device label set. `now_s` is a monotonic time in seconds.
  void apply(const PollData& d, const Settings& s, double now_s);
  void failed(const std::string& kind);  // one poll error of this kind (see kErrorKinds)
  void count_error(const std::string& kind, std::uint64_t n = 1);
  void poll_done(bool ok, double duration_s, int max_repetitions);
  void count_pdus(std::uint64_t sent, std::uint64_t received) { sent_ += sent, received_ += received; }
  // Appends this device's lines to `by_family` (family name -> lines).
  void render(const std::string& labels, SnmpText& by_family) const;
  std::uint64_t reboots() const { return reboots_; }
  // The uplinks seen in the last successful poll, by ifIndex.
  std::vector<SnmpResult::Link> uplinks() const;

  static const std::vector<std::string> kErrorKinds;

 private:
  struct Iface {
    std::string name, alias;
    double oper = 0, admin = 0, speed_bps = 0;
    bool uplink = false, hc = false, seen = false;
    // Traffic (in octets, out octets, in ucast, out ucast): one monotonic total per counter, fed by
    // the HC column while the agent has it and by the wrap-corrected 32-bit column otherwise; a
    // switch between the two adds nothing for that poll, so the total never goes back or jumps.
    std::uint64_t total[4] = {0, 0, 0, 0}, last64[4] = {0, 0, 0, 0};
    int src[4] = {0, 0, 0, 0};   // 64, 32, or 0 before the first sample
    WrapCounter c32[4], err[4];  // err: in errors, out errors, in discards, out discards
  };
  std::optional<std::uint32_t> ticks_;
  double ticks_at_ = 0, last_at_ = 0;
  std::uint64_t reboots_ = 0, polls_ = 0, sent_ = 0, received_ = 0;
  std::map<std::string, std::uint64_t> errors_;
  bool up_ = false, polled_ = false;
  double duration_ = 0;
  int max_rep_ = 0;
  std::string sys_name_, sys_descr_, sys_oid_;
  bool have_system_ = false;
  std::map<std::uint32_t, Iface> ifaces_;
  struct Custom {
    std::string family, type, labels;  // labels: index label and, for info, value
    double value = 0;
  };
  std::vector<Custom> custom_;
  std::map<std::string, WrapCounter> custom_wrap_;  // Counter32 custom counters: family{labels -> total
};

using text::sanitize_utf8;
// sanitize_utf8, then cut to at most `max` bytes at a character boundary.
inline std::string clip_utf8(const std::string& s, std::size_t max) {
  return text::truncate_utf8(sanitize_utf8(s), max);
}

// Names of the metric families the SNMP prober exports itself: custom objects may not take them.
const std::vector<std::string>& snmp_builtin_families();

// Opens nothing yet: the prober opens a session per poll. Initializes net-snmp once per process.
std::unique_ptr<Prober> make_snmp_prober(ProbeContext& ctx);

}  // namespace siteprobe::probes
