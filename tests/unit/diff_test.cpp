// inventory/diff: what `siteprobe check --diff OLD NEW` reports, and the `formerly` key it reads.
#include "inventory/diff.h"

#include <catch2/catch.hpp>

#include "probes/registry.h"

using namespace siteprobe;

namespace {

std::shared_ptr<const Config> load(const std::string& yaml, const std::string& name) {
  auto r = probes::parse_inventory(yaml, name);
  std::string errors;
  for (const auto& e : r.errors) errors += e + "\n";
  INFO(errors);
  REQUIRE(r.config);
  return r.config;
}

// A province with two districts and four communes: the "before" of a reorganisation.
const char* const kOld = R"(
sites:
  - {id: p, name: Tỉnh Cũ, level: province}
  - {id: d1, name: Huyện Một, level: district, parent: p}
  - {id: d2, name: Huyện Hai, level: district, parent: p}
  - {id: d1.a, name: Xã A, level: commune, parent: d1}
  - {id: d1.b, name: Xã B, level: commune, parent: d1}
  - {id: d2.c, name: Xã C, level: commune, parent: d2}
  - {id: d2.d, name: Xã D, level: commune, parent: d2}
  - {id: d2.e, name: Xã E, level: commune, parent: d2}
)";

// After: districts gone except d2 (renamed in place), a and b merged, c renamed, d moved under p,
// e gone, f new.
const char* const kNew = R"(
sites:
  - {id: p, name: Tỉnh Cũ, level: province}
  - {id: d2, name: Huyện Hai Mới, level: district, parent: p}
  - {id: p.ab, name: Xã AB, level: commune, parent: p, formerly: [d1.a, d1.b]}
  - {id: d2.c2, name: Xã C Mới, level: commune, parent: d2, formerly: [d2.c]}
  - {id: d2.d, name: Xã D, level: commune, parent: p}
  - {id: p.f, name: Xã F, level: commune, parent: p}
  - {id: p.g, name: Xã G, level: commune, parent: p, formerly: [gone-long-ago]}
)";

}  // namespace

TEST_CASE("formerly is parsed in order onto the site") {
  auto c = load(kNew, "new.yml");
  const auto& s = c->sites[2];
  CHECK(s.id == "p.ab");
  CHECK(s.formerly == std::vector<std::string>{"d1.a", "d1.b"});
  CHECK(c->sites[0].formerly.empty());
}

TEST_CASE("diff: added, removed, renamed, merged, re-parented, changed") {
  auto d = diff_inventories(*load(kOld, "old.yml"), *load(kNew, "new.yml"));
  REQUIRE(d.carried.size() == 2);
  CHECK(d.carried[0].site.id == "d2.c2");
  REQUIRE(d.carried[0].from.size() == 1);
  CHECK(d.carried[0].from[0].id == "d2.c");
  CHECK(d.carried[0].from[0].name == "Xã C");
  CHECK(d.carried[1].site.id == "p.ab");
  REQUIRE(d.carried[1].from.size() == 2);
  CHECK(d.carried[1].from[1].id == "d1.b");
  // p.g's only formerly id is not in OLD: it is new here, and its unknown id is reported.
  REQUIRE(d.added.size() == 2);
  CHECK(d.added[0].id == "p.f");
  CHECK(d.added[1].id == "p.g");
  REQUIRE(d.unknown_formerly.size() == 1);
  CHECK(d.unknown_formerly[0].second == "gone-long-ago");
  // d1.a, d1.b and d2.c live on through formerly: only d1 and d2.e are removed.
  REQUIRE(d.removed.size() == 2);
  CHECK(d.removed[0].id == "d1");
  CHECK(d.removed[1].id == "d2.e");
  REQUIRE(d.reparented.size() == 1);
  CHECK(d.reparented[0].site.id == "d2.d");
  CHECK(d.reparented[0].old_parent == "d2");
  CHECK(d.reparented[0].new_parent == "p");
  REQUIRE(d.changed.size() == 1);
  CHECK(d.changed[0].id == "d2");
  CHECK(d.changed[0].before == "Huyện Hai");
  CHECK(d.changed[0].after == "Huyện Hai Mới");
}

TEST_CASE("diff report: sections with names, and the counts") {
  auto d = diff_inventories(*load(kOld, "old.yml"), *load(kNew, "new.yml"));
  const std::string out = format_diff(d, "old.yml", "new.yml");
  INFO(out);
  CHECK(out.rfind("--- old.yml\n+++ new.yml\n", 0) == 0);
  CHECK(out.find("  renamed: d2.c (Xã C) → d2.c2 (Xã C Mới)\n") != std::string::npos);
  CHECK(out.find("  merged:  d1.a (Xã A) + d1.b (Xã B) → p.ab (Xã AB)\n") != std::string::npos);
  CHECK(out.find("\nadded (2):\n  + p.f (Xã F)\n  + p.g (Xã G)\n") != std::string::npos);
  CHECK(out.find("\nremoved (2):\n  - d1 (Huyện Một)\n  - d2.e (Xã E)\n") != std::string::npos);
  CHECK(out.find("  d2.d (Xã D): parent d2 → p\n") != std::string::npos);
  CHECK(out.find("  d2: name \"Huyện Hai\" → \"Huyện Hai Mới\"\n") != std::string::npos);
  CHECK(out.find("  p.g (Xã G): gone-long-ago\n") != std::string::npos);
  CHECK(out.find("\n2 added, 2 removed, 1 renamed, 1 merged, 1 re-parented, 1 changed\n") !=
        std::string::npos);
}

TEST_CASE("diff of an inventory with itself is empty") {
  auto c = load(kOld, "old.yml");
  auto d = diff_inventories(*c, *c);
  CHECK(d.added.empty());
  CHECK(d.removed.empty());
  CHECK(d.carried.empty());
  CHECK(d.reparented.empty());
  CHECK(d.changed.empty());
  CHECK(format_diff(d, "a", "a").find("0 added, 0 removed, 0 renamed, 0 merged, 0 re-parented, 0 changed") !=
        std::string::npos);
}

TEST_CASE("the post-reform inventory: 1 province, 92 communes, Bắc Kạn's 108 communes in formerly") {
  auto r = probes::load_inventory(SITEPROBE_SOURCE_DIR "/config/thai-nguyen.yml");
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.levels == std::vector<std::string>{"province", "commune"});
  REQUIRE(c.sites.size() == 93);
  CHECK(c.sites[0].id == "thai-nguyen");
  CHECK(c.sites[0].formerly == std::vector<std::string>{"bac-kan"});
  std::size_t old_ids = 0;
  for (const auto& s : c.sites) {
    old_ids += s.formerly.size();
    for (const auto& d : s.devices) CHECK(d.address.rfind("127.3", 0) == 0);
    if (s.id == "thai-nguyen.bang-thanh") {
      CHECK(s.name == "Xã Bằng Thành");
      CHECK(s.formerly == std::vector<std::string>{"pac-nam.bang-thanh", "pac-nam.boc-bo", "pac-nam.nhan-mon",
                                                   "pac-nam.giao-hieu"});
    }
  }
  CHECK(old_ids == 109);
}
