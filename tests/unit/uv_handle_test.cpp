#include "util/uv_handle.h"

#include <catch2/catch.hpp>
#include <optional>
#include <type_traits>

#include "probes/probe.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

// A timer handle that counts how often its memory is freed.
int freed = 0;
struct CountedTimer : uv_timer_t {
  ~CountedTimer() { ++freed; }
};

struct FakeEngine {
  std::optional<std::int64_t> due;
  int runs = 0;
  std::optional<std::int64_t> next_due() const { return due; }
  void run(std::int64_t) {
    ++runs;
    due.reset();
  }
};

}  // namespace

static_assert(!std::is_copy_constructible_v<UvHandle<uv_timer_t>>);
static_assert(!std::is_copy_assignable_v<UvHandle<uv_timer_t>>);
static_assert(std::is_nothrow_move_constructible_v<UvHandle<uv_poll_t>>);
static_assert(!std::is_copy_constructible_v<EngineTimer<FakeEngine>>);
static_assert(!std::is_copy_assignable_v<EngineTimer<FakeEngine>>);
static_assert(!std::is_move_constructible_v<EngineTimer<FakeEngine>>);

TEST_CASE("UvHandle closes its handle once and frees it in the close callback") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  freed = 0;
  {
    UvHandle<CountedTimer> a;
    REQUIRE(a.init([&](uv_timer_t* t) { return uv_timer_init(&loop, t); }) == 0);
    REQUIRE(uv_timer_start(
                a.get(), [](uv_timer_t*) {}, 1000000, 0) == 0);
    UvHandle<CountedTimer> b = std::move(a);  // hands the handle over: `a` no longer closes it
    CHECK(!a);  // NOLINT(bugprone-use-after-move): a moved-from UvHandle is empty, by contract
    CHECK(b);
    UvHandle<CountedTimer> c;
    REQUIRE(c.init([&](uv_timer_t* t) { return uv_timer_init(&loop, t); }) == 0);
    c = std::move(b);  // closes c's own handle
    c.reset();
    c.reset();  // nothing left to close
  }
  CHECK(freed == 0);  // the loop still owns the memory until the close callbacks run
  REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  CHECK(freed == 2);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("UvHandle keeps nothing when the handle's init fails") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  UvHandle<uv_poll_t> p;
  CHECK(p.init([&](uv_poll_t* h) { return uv_poll_init(&loop, h, -1); }) != 0);
  CHECK(!p);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("EngineTimer runs its engine when due and closes its timer on destruction") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  FakeEngine engine;
  {
    EngineTimer<FakeEngine> timer(&loop, engine);
    engine.due = static_cast<std::int64_t>(uv_hrtime());
    timer.arm();
    REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);  // runs once, then nothing is due: the loop ends
    CHECK(engine.runs == 1);
    timer.close();
    timer.arm();  // after close: does nothing
  }
  REQUIRE(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  CHECK(uv_loop_close(&loop) == 0);
}
