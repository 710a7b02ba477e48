#include "metrics/families.h"

#include <catch2/catch.hpp>
#include <regex>
#include <set>

#include "metrics/series.h"

using namespace siteprobe;

TEST_CASE("the family table is sorted, unique and well-formed") {
  const auto& all = families();
  REQUIRE(all.size() > 50);
  const std::regex name("siteprobe_[a-z0-9_]+");
  for (std::size_t i = 0; i < all.size(); ++i) {
    INFO(all[i].name);
    if (i) CHECK(all[i - 1].name < all[i].name);
    CHECK(std::regex_match(std::string(all[i].name), name));
    CHECK(std::set<std::string_view>{"gauge", "counter", "histogram"}.count(all[i].type) == 1);
    CHECK(!all[i].help.empty());
    // Prometheus conventions: counters end in _total, nothing else does.
    const bool total = all[i].name.size() > 6 && all[i].name.substr(all[i].name.size() - 6) == "_total";
    CHECK(total == (all[i].type == "counter"));
    CHECK(find_family(all[i].name) == &all[i]);
  }
}

TEST_CASE("a family missing from the table is a programming error, not a silent header") {
  CHECK(find_family("siteprobe_no_such_family") == nullptr);
  CHECK_THROWS_AS(family("siteprobe_no_such_family"), std::logic_error);
  std::string out;
  append_header(out, "siteprobe_device_up");
  CHECK(out.rfind("# HELP siteprobe_device_up 1 if", 0) == 0);
  CHECK(out.find("\n# TYPE siteprobe_device_up gauge\n") != std::string::npos);
}
