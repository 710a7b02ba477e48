// Shards (docs/scale-out.md): several siteprobe instances split one inventory by whole subtrees.
//
// A unit is a top-level site alone (the province) or the subtree under one of its children (a
// district and its communes; in a two-level province, one commune). Units go to shards by
// rendezvous (highest-random-weight) hashing: a unit's shard is the one whose hash with the unit
// is highest, so going from N to N+1 shards moves only the units the new shard wins, about
// 1/(N+1) of them, and no unit moves between two old shards.
//
// A shard's inventory keeps its own units plus the ancestors (and backup parents) of their sites,
// so it tells `down` from `unreachable` on its own; those extra sites are marked
// Site::shard_ancestor, and the shipped alert rules never page for them
// (siteprobe_shard_ancestor).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "inventory/config.h"

namespace siteprobe {

struct ShardSpec {
  int index = 0, count = 1;  // index in [0, count)
};
// Parses "i/N" (0 <= i < N <= 1000); nullopt with `why` set when it is not one.
std::optional<ShardSpec> parse_shard(const std::string& text, std::string& why);
// The unit of a site: its top-level site's id when it is one, else the id of its ancestor just
// below the top level (itself, for a district).
std::string shard_unit(const Site& s);
// The shard of a unit among `count` (rendezvous hashing; stable across versions and machines).
int shard_of(const std::string& unit, int count);
// The inventory shard `spec` probes: its units, and the ancestors of their sites (marked).
std::shared_ptr<const Config> shard_config(const Config& c, ShardSpec spec);
// `siteprobe check --shards N [--from M]`: the units of each shard, and the moves from M shards.
std::string format_shards(const Config& c, int count, int from);

}  // namespace siteprobe
