// SNMP MIB tables siteprobe reads: the OIDs of the system group and the IF-MIB columns, shared
// by the request planner (what to ask for) and SnmpDeviceState::apply (what the answers mean).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "probes/snmp.h"

namespace siteprobe::probes {

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

inline Oid col(const Oid& table, std::uint32_t c) {
  Oid o;
  o.reserve(table.size() + 1);
  o.assign(table.begin(), table.end());
  o.push_back(c);
  return o;
}

// Whether `o` is column `c` of `table` (c = 0: any column of it).
inline bool is_column(const Oid& o, const Oid& table, std::uint32_t c = 0) {
  return o.size() == table.size() + 1 && std::equal(table.begin(), table.end(), o.begin()) &&
         (c == 0 || o.back() == c);
}

std::string dotted(const Oid& o);

// One label, its value made valid UTF-8.
inline std::string label(const char* k, const std::string& v) {
  return render_labels({{k, sanitize_utf8(v)}});
}

// Whether a poll's data shows interfaces without ifXTable HC counters, whose 32-bit columns must
// then be walked from the next poll on.
bool needs_32bit_columns(const PollData& d);

}  // namespace siteprobe::probes
