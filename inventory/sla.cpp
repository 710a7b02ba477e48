// The `sla` block (docs/inventory.md#sla): availability targets for `siteprobe report`.
#include <string>

#include "inventory/calendar.h"
#include "inventory/parser.h"

namespace siteprobe {

double SlaSettings::slo_of(const Site& s) const {
  // The site itself first, then its ancestors from the nearest up.
  if (auto it = site_slo.find(s.id); it != site_slo.end()) return it->second;
  for (auto c = s.chain.rbegin(); c != s.chain.rend(); ++c)
    if (auto it = site_slo.find(*c); !c->empty() && it != site_slo.end()) return it->second;
  return slo;
}

namespace inventory_detail {

void Parser::parse_sla(const YAML::Node& n) {
  if (!check_map(n, "sla", {"slo", "time_zone", "sites"})) return;
  if (auto v = n["slo"])
    if (auto x = number_of(v, "sla.slo", 0, 100)) cfg_.sla.slo = *x;
  if (auto v = n["time_zone"])
    if (auto z = string_of(v, "sla.time_zone")) {
      std::string why;
      if (auto off = utc_offset(*z, why))
        cfg_.sla.time_zone = *z, cfg_.sla.utc_offset_seconds = *off;
      else
        error(v.Mark(), "sla.time_zone", "\"" + *z + "\": " + why);
    }
  const YAML::Node sites = n["sites"];
  if (!sites) return;
  if (!sites.IsMap()) {
    error(sites.Mark(), "sla.sites", "must be a mapping of site id to percent");
    return;
  }
  for (const auto& kv : sites) {
    const std::string id = kv.first.Scalar(), path = "sla.sites." + id;
    bool known = false;
    for (const auto& s : cfg_.sites) known = known || s.id == id;
    if (!known) {
      error(kv.first.Mark(), path, "unknown site \"" + id + "\"");
      continue;
    }
    if (auto x = number_of(kv.second, path, 0, 100)) cfg_.sla.site_slo[id] = *x;
  }
}

}  // namespace inventory_detail
}  // namespace siteprobe
