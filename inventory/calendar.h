// Calendar arithmetic shared by the inventory's conferences and maintenance windows: civil dates
// as day numbers, and time zones as fixed offsets (Vietnam has no daylight saving; zones that do
// are refused).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "inventory/config.h"

namespace siteprobe::inventory_detail {

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}
// Days since 1970-01-01 of a civil date, and back (Howard Hinnant's algorithms).
long days_from_civil(long y, unsigned m, unsigned d);
void civil_from_days(long z, long& y, unsigned& m, unsigned& d);
// "+07:00", "-03:30", "UTC", or an IANA name whose zone has no daylight-saving rules (its TZif
// footer, e.g. "<+07>-7"). Returns the offset east of UTC in seconds, or why not.
std::optional<int> utc_offset(const std::string& tz, std::string& why);

}  // namespace siteprobe::inventory_detail

namespace siteprobe {

// A maintenance window's occurrence under way at `now` (unix seconds), else its next one; nullopt
// when it has none left (a one-off window in the past).
std::optional<std::pair<std::int64_t, std::int64_t>> maintenance_occurrence(const MaintenanceWindow& w,
                                                                            std::int64_t now);

}  // namespace siteprobe
