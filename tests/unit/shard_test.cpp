// Shards (inventory/shard.h): whole subtrees by rendezvous hashing, ancestors kept and marked.
#include "inventory/shard.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "probes/registry.h"

using namespace siteprobe;

namespace {
std::shared_ptr<const Config> reference() {
  auto r = probes::load_inventory(std::string(SITEPROBE_SOURCE_DIR) + "/config/bac-kan.yml");
  REQUIRE(r.config);
  return r.config;
}
}  // namespace

TEST_CASE("shard: i/N parsed, anything else refused with why") {
  std::string why;
  const auto s = parse_shard("2/3", why);
  REQUIRE(s);
  CHECK(s->index == 2);
  CHECK(s->count == 3);
  for (const char* bad : {"3/3", "-1/3", "1/0", "1", "a/3", "1/3x", "0/1001", "", "/", "1//3"}) {
    CHECK_FALSE(parse_shard(bad, why));
    CHECK(why.find("i/N") != std::string::npos);
  }
}

TEST_CASE("shard: every site owned by exactly one shard, with its ancestors probed but marked") {
  const auto cfg = reference();
  for (int n : {1, 3, 4}) {
    std::map<std::string, int> owners;
    for (int i = 0; i < n; ++i) {
      const auto part = shard_config(*cfg, {i, n});
      std::set<std::string> ids;
      for (const auto& s : part->sites) ids.insert(s.id);
      for (const auto& s : part->sites) {
        if (!s.shard_ancestor) owners[s.id]++;
        for (const auto& a : s.chain)  // a shard can tell down from unreachable on its own
          if (!a.empty()) CHECK(ids.count(a));
        CHECK((s.shard_ancestor == (shard_of(shard_unit(s), n) != i)));
      }
    }
    CHECK(owners.size() == cfg->sites.size());
    for (const auto& [id, k] : owners) CHECK(k == 1);
  }
  // Whole subtrees: a commune goes where its district goes.
  for (const auto& s : cfg->sites)
    if (s.level == "commune") CHECK(shard_unit(s) == s.parent);
  CHECK(shard_unit(cfg->sites.front()) == cfg->sites.front().id);
}

TEST_CASE("shard: N to N+1 moves only units to the new shard, about 1/(N+1) of them") {
  std::size_t moved = 0;
  const int units = 2000;
  for (int u = 0; u < units; ++u) {
    const std::string id = "unit-" + std::to_string(u);
    const int a = shard_of(id, 3), b = shard_of(id, 4);
    if (a != b) {
      CHECK(b == 3);
      ++moved;
    }
  }
  const double share = static_cast<double>(moved) / units;
  CHECK(share > 0.21);
  CHECK(share < 0.29);
  // The same answer every time, on every machine: a fixed hash, not std::hash.
  CHECK(shard_of("ba-be", 3) == shard_of("ba-be", 3));
  CHECK(format_shards(*reference(), 4, 3).find("from 3 to 4 shards: ") != std::string::npos);
}

TEST_CASE("shard: a conference keeps only the participants this shard owns") {
  auto r = probes::parse_inventory(
      "sites:\n"
      "  - {id: p, name: P, level: province, devices: [{name: router, address: 127.0.0.1, role: router}]}\n"
      "  - {id: a, name: A, level: district, parent: p, devices: [{name: router, address: 127.0.0.2, role: "
      "router}]}\n"
      "  - {id: b, name: B, level: district, parent: p, devices: [{name: router, address: 127.0.0.3, role: "
      "router}]}\n"
      "conferences:\n"
      "  - {name: weekly, days: [mon], start: '08:00', duration: 1h, participants: all}\n",
      "t.yml");
  REQUIRE(r.config);
  std::size_t total = 0;
  for (int i = 0; i < 2; ++i) total += shard_config(*r.config, {i, 2})->conferences[0].participants.size();
  CHECK(total == r.config->conferences[0].participants.size());
}
