#include "inventory/diff.h"

#include <algorithm>
#include <map>
#include <set>

namespace siteprobe {

namespace {

std::string show(const SiteRefText& s) {
  return s.id + " (" + s.name + ")";
}

}  // namespace

InventoryDiff diff_inventories(const Config& old_cfg, const Config& new_cfg) {
  std::map<std::string, const Site*> olds, news;
  for (const auto& s : old_cfg.sites) olds[s.id] = &s;
  for (const auto& s : new_cfg.sites) news[s.id] = &s;
  InventoryDiff d;
  std::set<std::string> carried_ids;  // OLD ids that live on in a NEW site's `formerly`
  for (const auto& [id, s] : news) {
    InventoryDiff::Carried c{{id, s->name}, {}};
    for (const auto& f : s->formerly) {
      if (auto it = olds.find(f); it != olds.end()) {
        c.from.push_back({f, it->second->name});
        carried_ids.insert(f);
      } else {
        d.unknown_formerly.push_back({{id, s->name}, f});
      }
    }
    const bool successor = !c.from.empty();
    if (successor) d.carried.push_back(std::move(c));
    auto it = olds.find(id);
    if (it == olds.end()) {
      if (!successor) d.added.push_back({id, s->name});
      continue;
    }
    const Site& o = *it->second;
    if (o.parent != s->parent) d.reparented.push_back({{id, s->name}, o.parent, s->parent});
    if (o.name != s->name) d.changed.push_back({id, "name", o.name, s->name});
    if (o.level != s->level) d.changed.push_back({id, "level", o.level, s->level});
  }
  for (const auto& [id, s] : olds)
    if (!news.count(id) && !carried_ids.count(id)) d.removed.push_back({id, s->name});
  return d;
}

std::string format_diff(const InventoryDiff& d, const std::string& old_name, const std::string& new_name) {
  std::string out = "--- " + old_name + "\n+++ " + new_name + "\n";
  std::size_t merges = 0, renames = 0;
  for (const auto& c : d.carried) (c.from.size() > 1 ? merges : renames)++;
  if (!d.carried.empty()) {
    out += "\nrenamed/merged (" + std::to_string(d.carried.size()) + "):\n";
    for (const auto& c : d.carried) {
      std::string from;
      for (const auto& f : c.from) from += (from.empty() ? "" : " + ") + show(f);
      out += "  " + std::string(c.from.size() > 1 ? "merged:  " : "renamed: ") + from + " → " + show(c.site) +
             "\n";
    }
  }
  if (!d.added.empty()) {
    out += "\nadded (" + std::to_string(d.added.size()) + "):\n";
    for (const auto& s : d.added) out += "  + " + show(s) + "\n";
  }
  if (!d.removed.empty()) {
    out += "\nremoved (" + std::to_string(d.removed.size()) + "):\n";
    for (const auto& s : d.removed) out += "  - " + show(s) + "\n";
  }
  if (!d.reparented.empty()) {
    out += "\nre-parented (" + std::to_string(d.reparented.size()) + "):\n";
    for (const auto& m : d.reparented)
      out += "  " + show(m.site) + ": parent " + (m.old_parent.empty() ? "(none)" : m.old_parent) + " → " +
             (m.new_parent.empty() ? "(none)" : m.new_parent) + "\n";
  }
  if (!d.changed.empty()) {
    out += "\nchanged (" + std::to_string(d.changed.size()) + "):\n";
    for (const auto& c : d.changed)
      out += "  " + c.id + ": " + c.what + " \"" + c.before + "\" → \"" + c.after + "\"\n";
  }
  if (!d.unknown_formerly.empty()) {
    out += "\nformerly ids not in " + old_name + " (" + std::to_string(d.unknown_formerly.size()) + "):\n";
    for (const auto& [s, f] : d.unknown_formerly) out += "  " + show(s) + ": " + f + "\n";
  }
  out += "\n" + std::to_string(d.added.size()) + " added, " + std::to_string(d.removed.size()) +
         " removed, " + std::to_string(renames) + " renamed, " + std::to_string(merges) + " merged, " +
         std::to_string(d.reparented.size()) + " re-parented, " + std::to_string(d.changed.size()) +
         " changed\n";
  return out;
}

}  // namespace siteprobe
