#include "probes/scheduler.h"

#include <algorithm>

#include "util/prefetch.h"

namespace siteprobe::probes {

std::int64_t splay_offset_ns(const std::string& key, std::int64_t interval_ns) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a, then a finaliser to spread low bits
  for (char c : key) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return interval_ns > 0 ? static_cast<std::int64_t>(h % static_cast<std::uint64_t>(interval_ns)) : 0;
}

std::int64_t grid_at_or_after(std::int64_t phase, std::int64_t interval, std::int64_t from) {
  return from + ((phase - from) % interval + interval) % interval;
}

void Scheduler::EventQueue::push(const Event& e) {
  ++size_;
  source_ = kUnknown;
  // The lane whose last event is the latest not after `e`: a stream keeps to its own lane.
  std::deque<Event>* fit = nullptr;
  for (auto& l : lanes_)
    if (l.empty() ? !fit
                  : l.back().when <= e.when && (!fit || fit->empty() || fit->back().when < l.back().when))
      fit = &l;
  if (!fit && lanes_.size() < kLanes) fit = &lanes_.emplace_back();
  if (fit)
    fit->push_back(e);
  else
    rest_.push(e);
}

std::size_t Scheduler::EventQueue::source() const {
  if (source_ != kUnknown) return source_;
  std::size_t best = kLanes;
  const Event* min = rest_.empty() ? nullptr : &rest_.top();
  for (std::size_t i = 0; i < lanes_.size(); ++i)
    if (!lanes_[i].empty() && (!min || lanes_[i].front().when < min->when)) {
      best = i;
      min = &lanes_[i].front();
    }
  return source_ = best;
}

const Scheduler::Event& Scheduler::EventQueue::top() const {
  const std::size_t s = source();
  return s == kLanes ? rest_.top() : lanes_[s].front();
}

void Scheduler::EventQueue::pop() {
  --size_;
  const std::size_t s = source();
  if (s == kLanes)
    rest_.pop();
  else
    lanes_[s].pop_front();
  source_ = kUnknown;
}

std::uint32_t Scheduler::add() {
  std::uint32_t idx;
  if (!free_.empty()) {
    idx = free_.back();
    free_.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[idx] = {next_generation_++};
  return idx;
}

void Scheduler::remove(std::uint32_t idx) {
  slots_[idx].generation = 0;  // its queued events are dropped when they come up
  free_.push_back(idx);
}

void Scheduler::schedule(std::uint32_t idx, const std::string& key, std::int64_t interval_ns,
                         std::int64_t now) {
  Slot& s = slots_[idx];
  s.epoch++;
  s.held = false;
  s.interval = interval_ns;
  if (interval_ns <= 0) return;
  s.phase = splay_offset_ns(key, interval_ns);
  events_.push({grid_at_or_after(s.phase, interval_ns, now), idx, s.generation, s.epoch, kStart});
}

std::optional<std::int64_t> Scheduler::next_due() const {
  if (events_.empty()) return std::nullopt;
  return events_.top().when;
}

bool Scheduler::accept(Event& e, std::int64_t now) {
  if (!live(e.slot, e.generation)) return false;  // removed since
  if (e.kind != kStart && e.kind != kPaced) return true;
  Slot& s = slots_[e.slot];
  if (e.arg != s.epoch) return false;  // rescheduled since
  if (e.kind == kPaced) {
    s.held = false;
  } else {
    // The next grid point after now: a start that came late skips what it missed.
    events_.push({grid_at_or_after(s.phase, s.interval, now + 1), e.slot, e.generation, s.epoch, kStart});
    if (s.held) return false;  // still waiting for its paced start: one start, not two
    const std::int64_t at = spacing_ > 0 ? std::max(now, paced_until_) : now;
    if (spacing_ > 0) paced_until_ = at + spacing_;
    if (at > now) {
      s.held = true;
      events_.push({at, e.slot, e.generation, s.epoch, kPaced});
      return false;
    }
  }
  e.kind = kStart;
  return true;
}

std::optional<Scheduler::Event> Scheduler::pop(std::int64_t now) {
  while (!events_.empty() && events_.top().when <= now) {
    Event e = events_.top();
    events_.pop();
    if (accept(e, now)) return e;
  }
  return std::nullopt;
}

// accept() queues only events due after `now`, so taking every due event first changes nothing.
std::size_t Scheduler::pop_due(std::int64_t now, std::vector<Event>& out) {
  const std::size_t first = out.size();
  taken_.clear();
  for (; !events_.empty() && events_.top().when <= now; events_.pop()) taken_.push_back(events_.top());
  for (const Event& e : taken_)
    if (e.slot < slots_.size()) siteprobe::prefetch(&slots_[e.slot]);
  for (Event& e : taken_)
    if (accept(e, now)) out.push_back(e);
  return out.size() - first;
}

}  // namespace siteprobe::probes
