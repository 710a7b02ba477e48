#include "inventory/shard.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

namespace siteprobe {

std::optional<ShardSpec> parse_shard(const std::string& text, std::string& why) {
  const auto slash = text.find('/');
  const auto number = [](const std::string& t) -> long {
    if (t.empty() || t.size() > 4 || t.find_first_not_of("0123456789") != std::string::npos) return -1;
    return std::stol(t);
  };
  const long i = slash == std::string::npos ? -1 : number(text.substr(0, slash));
  const long n = slash == std::string::npos ? -1 : number(text.substr(slash + 1));
  if (i < 0 || n < 1 || n > 1000 || i >= n) {
    why = "\"" + text + "\" is not i/N with 0 <= i < N <= 1000 (e.g. 0/3)";
    return std::nullopt;
  }
  return ShardSpec{static_cast<int>(i), static_cast<int>(n)};
}

std::string shard_unit(const Site& s) {
  for (std::size_t l = 1; l < s.chain.size(); ++l)
    if (!s.chain[l].empty()) return s.chain[l];
  return s.id;  // a top-level site
}

namespace {
// FNV-1a, then splitmix64's finalizer: a fixed function, so every instance and version agrees.
std::uint64_t weight(const std::string& unit, int shard) {
  std::uint64_t h = 14695981039346656037ull;
  const std::string key = unit + '\0' + std::to_string(shard);
  for (const unsigned char ch : key) h = (h ^ ch) * 1099511628211ull;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}
}  // namespace

int shard_of(const std::string& unit, int count) {
  int best = 0;
  std::uint64_t best_w = 0;
  for (int i = 0; i < count; ++i)
    if (const std::uint64_t w = weight(unit, i); i == 0 || w > best_w) {
      best = i;
      best_w = w;
    }
  return best;
}

std::shared_ptr<const Config> shard_config(const Config& c, ShardSpec spec) {
  auto out = std::make_shared<Config>(c);
  if (spec.count <= 1) return out;
  std::map<std::string, const Site*> by_id;
  for (const auto& s : c.sites) by_id[s.id] = &s;
  std::set<std::string> own, need;
  for (const auto& s : c.sites)
    if (shard_of(shard_unit(s), spec.count) == spec.index) own.insert(s.id);
  // What an owned site's state depends on: its ancestors, its backup parents, theirs in turn.
  std::function<void(const std::string&)> add = [&](const std::string& id) {
    auto it = by_id.find(id);
    if (it == by_id.end() || !need.insert(id).second) return;
    for (const auto& a : it->second->chain)
      if (!a.empty()) add(a);
    for (const auto& b : it->second->backup_parents) add(b);
  };
  for (const auto& id : own) add(id);
  out->sites.clear();
  for (const auto& s : c.sites) {
    if (!need.count(s.id)) continue;
    out->sites.push_back(s);
    out->sites.back().shard_ancestor = !own.count(s.id);
  }
  // A conference's verdicts come from the shards that own its participants.
  for (auto& conf : out->conferences) {
    auto& p = conf.participants;
    p.erase(std::remove_if(p.begin(), p.end(), [&](const std::string& id) { return !own.count(id); }),
            p.end());
  }
  for (auto& w : out->maintenance) {
    auto& s = w.sites;
    s.erase(std::remove_if(s.begin(), s.end(), [&](const std::string& id) { return !need.count(id); }),
            s.end());
    auto& d = w.devices;
    d.erase(std::remove_if(d.begin(), d.end(),
                           [&](const std::string& k) { return !need.count(k.substr(0, k.find('/'))); }),
            d.end());
  }
  return out;
}

std::string format_shards(const Config& c, int count, int from) {
  std::map<std::string, std::size_t> sites;  // per unit, in first-seen order below
  std::vector<std::string> units;
  for (const auto& s : c.sites) {
    const std::string u = shard_unit(s);
    if (!sites.count(u)) units.push_back(u);
    sites[u]++;
  }
  std::string out;
  for (int i = 0; i < count; ++i) {
    std::string list;
    std::size_t n = 0, k = 0;
    for (const auto& u : units)
      if (shard_of(u, count) == i) {
        list += (list.empty() ? "" : ", ") + u + " (" + std::to_string(sites[u]) + ")";
        n += sites[u];
        ++k;
      }
    out += "shard " + std::to_string(i) + "/" + std::to_string(count) + ": " + std::to_string(k) +
           (k == 1 ? " unit, " : " units, ") + std::to_string(n) + " sites: " + (list.empty() ? "-" : list) +
           "\n";
  }
  if (from > 0) {
    std::string moves;
    std::size_t moved = 0, moved_sites = 0;
    for (const auto& u : units)
      if (const int a = shard_of(u, from), b = shard_of(u, count); a != b) {
        moves += "  " + u + " (" + std::to_string(sites[u]) + " sites): shard " + std::to_string(a) + " -> " +
                 std::to_string(b) + "\n";
        ++moved;
        moved_sites += sites[u];
      }
    char pct[32];
    std::snprintf(
        pct, sizeof pct, "%.0f %%",
        units.empty() ? 0.0 : 100.0 * static_cast<double>(moved) / static_cast<double>(units.size()));
    out += "\nfrom " + std::to_string(from) + " to " + std::to_string(count) +
           " shards: " + std::to_string(moved) + " of " + std::to_string(units.size()) + " units move (" +
           pct + "), " + std::to_string(moved_sites) + " of " + std::to_string(c.sites.size()) + " sites\n" +
           moves;
  }
  return out;
}

}  // namespace siteprobe
