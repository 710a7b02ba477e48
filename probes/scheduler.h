// The scheduling core the probe engines share: a slot table, one event queue, splayed grid starts
// and start pacing, all on a clock the caller passes in (`now`, monotonic ns), so an engine is
// unit-tested without sleeping and driven in production by EngineTimer (uv_hrtime).
//
// Slots: an engine keeps its per-target state in a vector indexed by slot, and puts the index and
// its generation in packets, probe ids and events. Each new occupant of a slot gets a new
// generation, so events, packets and answers meant for a removed target are told apart and dropped.
//
// Grid: a slot with interval I starts at every t with t ≡ splay_offset_ns(key, I) (mod I). The grid
// is on CLOCK_MONOTONIC, which counts from boot, not from daemon start: a reload or a restart of the
// daemon keeps every phase (a reboot moves them, which nothing depends on). Not CLOCK_REALTIME: its
// steps (NTP at boot, an operator's `date`) would skip or repeat starts. A start that comes late
// (a stall) skips to the next grid point after it, so the phase never drifts.
//
// Pacing: with set_spacing(s), starts come at least s apart, so thousands due at once are spread
// out; a start held back keeps its grid. A cap on work in flight (SNMP's snmp_max_inflight) is the
// engine's: it queues the starts pop() hands it and runs them as capacity frees up.
//
// Queue: events come as a few interleaved streams, each in time order (the grid starts of one
// interval, the deadlines of one timeout, the sends of one spacing), so EventQueue keeps a few
// sorted FIFO lanes and appends each event to the lane it extends: O(1) and sequential memory,
// where a binary heap 100k deep cost O(log n) cache misses three times a probe. Events that extend
// no lane (the first starts after a load, in phase order) go to a heap.
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "util/uv_handle.h"

namespace siteprobe::probes {

// Deterministic start offset of a target within its interval, from a hash of its key, so start
// times spread evenly and stay put across reloads and restarts.
std::int64_t splay_offset_ns(const std::string& key, std::int64_t interval_ns);

// The first t >= from with t ≡ phase (mod interval); interval > 0.
std::int64_t grid_at_or_after(std::int64_t phase, std::int64_t interval, std::int64_t from);

class Scheduler {
 public:
  // Event kinds: kStart is a grid start; engines number their own kinds from 1.
  static constexpr std::uint8_t kStart = 0;
  struct Event {
    std::int64_t when;
    std::uint32_t slot, generation, arg;  // arg: the engine's (a sequence number, a probe number)
    std::uint8_t kind;
    bool operator>(const Event& o) const { return when > o.when; }
  };

  // Events in time order (`when`; equal times in no particular order).
  class EventQueue {
   public:
    void push(const Event& e);
    bool empty() const { return size_ == 0; }
    const Event& top() const;  // not empty
    void pop();                // not empty

   private:
    static constexpr std::size_t kLanes = 8;
    // Of top(): a lane's index, or kLanes for the heap; found once per change (pop() reads
    // top() first, so it is not looked for twice).
    std::size_t source() const;
    static constexpr std::size_t kUnknown = kLanes + 1;
    mutable std::size_t source_ = kUnknown;
    std::vector<std::deque<Event>> lanes_;
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> rest_;
    std::size_t size_ = 0;
  };

  // Puts a new T at a free index of `table` (one removed before, or a new one at the end), gives
  // the slot a new generation, and returns the index. The slot has no grid until schedule().
  template <class T>
  std::uint32_t add(std::vector<std::unique_ptr<T>>& table) {
    const std::uint32_t idx = add();
    if (idx >= table.size()) table.resize(idx + 1);
    table[idx] = std::make_unique<T>();
    return idx;
  }
  template <class T>
  void remove(std::vector<std::unique_ptr<T>>& table, std::uint32_t idx) {
    table[idx].reset();
    remove(idx);
  }
  // Whether `generation` is the current occupant of slot `idx`.
  bool live(std::uint32_t idx, std::uint32_t generation) const {
    return idx < slots_.size() && generation != 0 && slots_[idx].generation == generation;
  }
  std::uint32_t generation(std::uint32_t idx) const { return slots_[idx].generation; }
  // The same for an engine that keeps its per-slot state elsewhere (a map of devices, say).
  std::uint32_t add();
  void remove(std::uint32_t idx);

  // (Re)starts slot `idx` on the grid of `key` and `interval_ns`: the first start is the first grid
  // point at or after `now`; starts queued before are dropped. interval_ns <= 0: no starts.
  void schedule(std::uint32_t idx, const std::string& key, std::int64_t interval_ns, std::int64_t now);
  // Minimum ns between two starts (0: none).
  void set_spacing(std::int64_t ns) { spacing_ = ns; }
  // Queues an engine event for the slot's current occupant.
  void at(std::int64_t when, std::uint32_t idx, std::uint8_t kind, std::uint32_t arg = 0) {
    events_.push({when, idx, slots_[idx].generation, arg, kind});
  }

  // When the next event is due, or nullopt if none (it may turn out stale).
  std::optional<std::int64_t> next_due() const;
  // The next event due at `now` of a live slot, or nullopt. A kStart also queues the slot's next
  // grid start; pacing may hold it back (then it comes from a later pop).
  std::optional<Event> pop(std::int64_t now);
  // Appends to `out` every event that pop(now) calls would return, in the same order; returns how
  // many. The due events are taken off the queue first and their slots prefetched together: at 10k
  // targets a grain's events are as many cache misses, otherwise waited for one at a time.
  std::size_t pop_due(std::int64_t now, std::vector<Event>& out);

 private:
  static constexpr std::uint8_t kPaced = 255;  // a grid start held back by pacing
  struct Slot {
    std::uint32_t generation = 0, epoch = 0;  // generation 0: free; epoch: drops starts of an old grid
    std::int64_t interval = 0, phase = 0;
    bool held = false;  // a start held back by pacing is queued
  };

  // Whether a due event `e`, just taken off the queue, goes to the engine (a kPaced one as kStart);
  // a grid start also queues the slot's next one.
  bool accept(Event& e, std::int64_t now);

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::vector<Event> taken_;  // pop_due()'s, reused
  std::uint32_t next_generation_ = 1;
  EventQueue events_;
  std::int64_t spacing_ = 0, paced_until_ = 0;
};

// Runs a scheduling engine (next_due() and run(now), times from uv_hrtime) on a libuv loop with
// one timer, re-armed after every run; a prober calls arm() again whenever its engine's next due
// time may have moved. With a grain, the timer wakes only on multiples of it (monotonic clock), and
// each run takes every event due by then at once: fewer wake-ups, batched sends. The timer is closed by
// close() or the destructor, and freed in its close callback (UvHandle). Neither copyable nor movable: the
// timer's `data` points at this object.
template <class Engine>
class EngineTimer {
 public:
  EngineTimer(uv_loop_t* loop, Engine& engine, std::int64_t grain_ns = 0)
      : engine_(engine), grain_(grain_ns) {
    uv_must(timer_.init([loop](uv_timer_t* t) { return uv_timer_init(loop, t); }), "uv_timer_init");
    timer_.get()->data = this;
  }
  EngineTimer(const EngineTimer&) = delete;
  EngineTimer& operator=(const EngineTimer&) = delete;

  void arm() {
    if (!timer_) return;
    auto due = engine_.next_due();
    if (!due) {
      uv_must(uv_timer_stop(timer_.get()), "uv_timer_stop");
      return;
    }
    // At least 1 ms: libuv (1.44) runs a timer started with 0 ms again in the same pass (it compares
    // with the loop time of the pass's start), so an engine behind its schedule (100k targets) would
    // starve I/O, signals and every other timer for as long as it stays behind.
    if (grain_ > 0) *due = (*due + grain_ - 1) / grain_ * grain_;
    const auto now = static_cast<std::int64_t>(uv_hrtime());
    const auto ms = *due > now ? static_cast<std::uint64_t>((*due - now + 999999) / 1000000) : 1;
    uv_must(uv_timer_start(timer_.get(), on_timer, ms, 0), "uv_timer_start");
  }
  void close() { timer_.reset(); }

 private:
  static void on_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<EngineTimer*>(t->data);
    self->engine_.run(static_cast<std::int64_t>(uv_hrtime()));
    self->arm();
  }

  Engine& engine_;
  std::int64_t grain_;
  UvHandle<uv_timer_t> timer_;
};

}  // namespace siteprobe::probes
