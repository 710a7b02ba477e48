#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "inventory/config.h"

namespace siteprobe {

void spread_map_positions(std::vector<Site>& sites) {
  std::map<std::pair<double, double>, std::vector<Site*>> at;
  for (auto& s : sites) {
    s.map_lat = s.lat;
    s.map_lon = s.lon;
    if (s.lat && s.lon) at[{*s.lat, *s.lon}].push_back(&s);
  }
  for (auto& [where, group] : at) {
    // A circle on the map: a degree of longitude is cos(latitude) times shorter than one of latitude.
    const double k = 1 / std::max(0.1, std::cos(where.first * M_PI / 180));
    for (std::size_t i = 1; i < group.size(); ++i) {
      const double a = 2 * M_PI * static_cast<double>(i - 1) / static_cast<double>(group.size() - 1);
      group[i]->map_lat = std::clamp(where.first + kMapSpreadDegrees * std::cos(a), -90.0, 90.0);
      group[i]->map_lon = where.second + kMapSpreadDegrees * k * std::sin(a);
    }
  }
}

}  // namespace siteprobe
