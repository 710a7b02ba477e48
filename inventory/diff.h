// What changed between two inventories, for a reorganisation's change ticket (`siteprobe check
// --diff OLD NEW`, docs/inventory.md#renames-and-merges). Pure: two Configs in, a report out.
#pragma once

#include <string>
#include <vector>

#include "inventory/config.h"

namespace siteprobe {

struct SiteRefText {
  std::string id, name;
};

struct InventoryDiff {
  // A NEW site that lists OLD ids in `formerly`: one old id is a rename, several a merge.
  struct Carried {
    SiteRefText site;               // in NEW
    std::vector<SiteRefText> from;  // in OLD, in the order `formerly` lists them
  };
  struct Moved {
    SiteRefText site;  // same id in both
    std::string old_parent, new_parent;
  };
  struct Changed {
    std::string id, what, before, after;  // what: "name" or "level"
  };
  std::vector<SiteRefText> added;    // in NEW only, not a successor of any OLD site
  std::vector<SiteRefText> removed;  // in OLD only, and not carried into a NEW site by `formerly`
  std::vector<Carried> carried;      // renamed (one old id) or merged (several)
  std::vector<Moved> reparented;
  std::vector<Changed> changed;
  // `formerly` ids that are not sites of OLD (history from an earlier inventory, or a typo).
  std::vector<std::pair<SiteRefText, std::string>> unknown_formerly;
};

// Every list is sorted by site id.
InventoryDiff diff_inventories(const Config& old_cfg, const Config& new_cfg);

// The report for the ticket: one section per non-empty list, then a line of counts.
std::string format_diff(const InventoryDiff& d, const std::string& old_name, const std::string& new_name);

}  // namespace siteprobe
