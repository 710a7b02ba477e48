#include "probes/scheduler.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <tuple>

using namespace siteprobe::probes;

namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kMinute = 60 * kS;
struct Dummy {};

// Pops everything due up to `until`, stepping from one due time to the next like EngineTimer does;
// returns the (time, slot) of each start and of each other event.
std::vector<std::pair<std::int64_t, std::uint32_t>> drive(Scheduler& s, std::int64_t until,
                                                          std::vector<Scheduler::Event>* other = nullptr) {
  std::vector<std::pair<std::int64_t, std::uint32_t>> starts;
  while (s.next_due() && *s.next_due() <= until) {
    const std::int64_t now = *s.next_due();
    while (auto e = s.pop(now)) {
      if (e->kind == Scheduler::kStart)
        starts.emplace_back(now, e->slot);
      else if (other)
        other->push_back(*e);
    }
  }
  return starts;
}

}  // namespace

TEST_CASE("scheduler: starts land on the splayed grid, and a late one skips to the next grid point") {
  // splay_offset_ns("bac-kan/router", 10 s) is 9.822359401 s (icmp_test checks the hash itself).
  Scheduler s;
  std::vector<std::unique_ptr<Dummy>> table;
  const auto idx = s.add(table);
  s.schedule(idx, "bac-kan/router", 10 * kS, 1000 * kS);
  REQUIRE(s.next_due() == 1009'822'359'401);
  CHECK(!s.pop(1009'822'359'400));
  CHECK(drive(s, 1030 * kS) == std::vector<std::pair<std::int64_t, std::uint32_t>>{{1009'822'359'401, idx},
                                                                                   {1019'822'359'401, idx},
                                                                                   {1029'822'359'401, idx}});
  // The loop stalled for 25 s: one start, late, then back on the grid (not 25 s + 10 s later).
  REQUIRE(s.pop(1055 * kS));
  CHECK(!s.pop(1055 * kS));
  CHECK(s.next_due() == 1059'822'359'401);
}

TEST_CASE("scheduler: a reload that keeps a target keeps its grid phase") {
  Scheduler s;
  std::vector<std::unique_ptr<Dummy>> table;
  const auto a = s.add(table);
  s.schedule(a, "bac-kan/router", 10 * kS, 1000 * kS);
  drive(s, 1010 * kS);
  // The engine schedules it again (say its interval went 10 s -> 60 s -> 10 s) at an odd time:
  // same phase, and the starts queued for the old schedule do not fire too.
  s.schedule(a, "bac-kan/router", kMinute, 1013'123'456'789);
  s.schedule(a, "bac-kan/router", 10 * kS, 1013'123'456'789);
  CHECK(drive(s, 1030 * kS) ==
        std::vector<std::pair<std::int64_t, std::uint32_t>>{{1019'822'359'401, a}, {1029'822'359'401, a}});
  // Its series rebuilt (removed and added again): still the same phase.
  s.remove(table, a);
  const auto b = s.add(table);
  s.schedule(b, "bac-kan/router", 10 * kS, 1031 * kS);
  CHECK(s.next_due() == 1039'822'359'401);
}

TEST_CASE("scheduler: a restarted process puts a target on the same grid") {
  // The grid is on CLOCK_MONOTONIC (since boot, not since daemon start): a new process a day later,
  // with other targets in other slots, starts the target at the same phase.
  Scheduler before, after;
  std::vector<std::unique_ptr<Dummy>> t1, t2;
  const auto a = before.add(t1);
  before.schedule(a, "cho-don/vc", kMinute, 0);
  CHECK(before.next_due() == 41'198'635'077);  // splay_offset_ns("cho-don/vc", 60 s)
  for (int i = 0; i < 3; ++i) after.add(t2);
  const auto b = after.add(t2);
  CHECK(b == 3);
  after.schedule(b, "cho-don/vc", kMinute, 86'400 * kS + 7);
  CHECK(drive(after, 86'400 * kS + 2 * kMinute) == std::vector<std::pair<std::int64_t, std::uint32_t>>{
                                                       {86'441'198'635'077, b}, {86'501'198'635'077, b}});
}

TEST_CASE("scheduler: pacing spreads 10,000 simultaneous starts by the spacing, once each") {
  Scheduler s;
  std::vector<std::unique_ptr<Dummy>> table;
  for (int i = 0; i < 10'000; ++i) s.schedule(s.add(table), "site/d" + std::to_string(i), 10 * kS, 0);
  s.set_spacing(100'000);  // 100 µs
  // The loop was stalled for the whole first interval: every target is due at 10 s.
  std::vector<std::pair<std::int64_t, std::uint32_t>> starts;
  for (auto e = s.pop(10 * kS); e; e = s.pop(10 * kS)) starts.emplace_back(10 * kS, e->slot);
  CHECK(starts.size() == 1);
  for (const auto& st : drive(s, 11 * kS - 1)) starts.push_back(st);
  REQUIRE(starts.size() == 10'000);
  std::set<std::uint32_t> slots;
  for (std::size_t k = 0; k < starts.size(); ++k) {
    if (starts[k].first != 10 * kS + static_cast<std::int64_t>(k) * 100'000)
      FAIL("start " << k << " at " << starts[k].first);
    slots.insert(starts[k].second);
  }
  CHECK(slots.size() == 10'000);
  // Held back, they kept their grid: by the third interval each slot starts once, at its grid point
  // (pacing may still hold one back by a few spacings where two grid points nearly coincide).
  drive(s, 20 * kS - 1);
  std::vector<int> seen(10'000);
  for (const auto& [t, slot] : drive(s, 30 * kS - 1)) {
    seen[slot]++;
    const auto late = t - 20 * kS - splay_offset_ns("site/d" + std::to_string(slot), 10 * kS);
    if (late < 0 || late > 1'000'000) FAIL("slot " << slot << " off its grid by " << late);
  }
  CHECK(std::count(seen.begin(), seen.end(), 1) == 10'000);
}

TEST_CASE("scheduler: pop_due hands out what pop would, in the same order, grain by grain") {
  // Two schedulers with the same history: grid starts late and on time, pacing, engine events of
  // removed and rescheduled slots. One is drained by pop(), the other by pop_due().
  const auto build = [](Scheduler& s, std::vector<std::unique_ptr<Dummy>>& table) {
    std::mt19937 rng(7);
    for (int i = 0; i < 3000; ++i) {
      const auto idx = s.add(table);
      s.schedule(idx, "site/d" + std::to_string(i), (1 + static_cast<std::int64_t>(rng() % 10)) * kS, 0);
      s.at(static_cast<std::int64_t>(rng() % (20 * kS)), idx, 1, static_cast<std::uint32_t>(i));
    }
    for (std::uint32_t i = 0; i < 3000; i += 7) s.remove(table, i);
    for (std::uint32_t i = 3; i < 3000; i += 11)
      if (table[i]) s.schedule(i, "moved/" + std::to_string(i), 3 * kS, 2 * kS);
    s.set_spacing(2'000'000);
  };
  Scheduler a, b;
  std::vector<std::unique_ptr<Dummy>> ta, tb;
  build(a, ta);
  build(b, tb);
  using Seen = std::tuple<std::int64_t, std::int64_t, std::uint32_t, std::uint32_t, std::uint8_t>;
  std::vector<Seen> by_pop, by_due;
  std::vector<Scheduler::Event> batch;
  // A 10 ms grain from a stall at 5 s: the first grain holds five seconds of events.
  for (std::int64_t now = 5 * kS; now < 40 * kS; now += 10'000'000) {
    while (auto e = a.pop(now)) by_pop.emplace_back(now, e->when, e->slot, e->arg, e->kind);
    batch.clear();
    const std::size_t n = b.pop_due(now, batch);
    CHECK(n == batch.size());
    for (const auto& e : batch) by_due.emplace_back(now, e.when, e.slot, e.arg, e.kind);
  }
  CHECK(by_pop.size() > 15'000);
  CHECK(by_due == by_pop);
}

TEST_CASE("scheduler: a removed slot's events never fire; its reuse gets a new generation") {
  Scheduler s;
  std::vector<std::unique_ptr<Dummy>> table;
  const auto a = s.add(table);
  CHECK(a == 0);
  CHECK(s.generation(a) == 1);
  s.schedule(a, "bac-kan/router", 10 * kS, 0);
  s.at(5 * kS, a, 1, 7);
  s.remove(table, a);
  CHECK(!table[a]);
  CHECK(!s.live(a, 1));
  const auto b = s.add(table);
  CHECK(b == a);  // the freed slot is reused
  CHECK(s.generation(b) == 2);
  CHECK(table[b]);
  s.at(6 * kS, b, 1, 9);
  std::vector<Scheduler::Event> other;
  CHECK(drive(s, 20 * kS, &other).empty());  // b has no grid; a's grid went with it
  REQUIRE(other.size() == 1);
  CHECK(other[0].when == 6 * kS);
  CHECK(other[0].arg == 9);
  CHECK(other[0].generation == 2);
  CHECK(!s.next_due());
}

TEST_CASE("scheduler: the event queue hands out every event in time order, however they come",
          "[scheduler]") {
  std::mt19937_64 rng(7);
  for (int run = 0; run < 50; ++run) {
    Scheduler::EventQueue q;
    std::multiset<std::int64_t> in;
    std::vector<std::int64_t> out;
    // Interleaved sorted streams (lanes), random times (the heap), and pops in between, with new
    // events never before the last one popped (a clock that does not go back).
    std::int64_t now = 0, stream[12] = {};
    const int streams = 1 + run % 12;
    for (int i = 0; i < 3000; ++i) {
      const auto r = rng() % 10;
      if (r < 3 && !q.empty()) {
        out.push_back(q.top().when);
        now = q.top().when;
        q.pop();
        in.erase(in.find(out.back()));
        continue;
      }
      std::int64_t when;
      if (r < 8) {
        auto& t = stream[rng() % static_cast<std::uint64_t>(streams)];
        t = std::max(t, now) + static_cast<std::int64_t>(rng() % 100);
        when = t;
      } else {
        when = now + static_cast<std::int64_t>(rng() % 1000);
      }
      q.push({when, 0, 0, 0, 0});
      in.insert(when);
    }
    while (!q.empty()) {
      out.push_back(q.top().when);
      q.pop();
      in.erase(in.find(out.back()));
    }
    CHECK(in.empty());
    CHECK(std::is_sorted(out.begin(), out.end()));
  }
}
