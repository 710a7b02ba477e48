#include "probes/snmp_schedule.h"

#include <algorithm>

namespace siteprobe::probes {

void SnmpSchedule::set(const std::string& key, std::int64_t interval_ns, std::int64_t now_ns,
                       const std::string& usm_key) {
  auto [it, added] = devs_.try_emplace(key);
  Entry& e = it->second;
  e.usm_key = usm_key;
  if (!added && e.interval == interval_ns) return;
  if (added) {
    e.slot = grid_.add();
    if (e.slot >= keys_.size()) keys_.resize(e.slot + 1);
    keys_[e.slot] = key;
  }
  e.interval = interval_ns;
  grid_.schedule(e.slot, key, interval_ns, now_ns);
}

void SnmpSchedule::remove(const std::string& key) {
  auto it = devs_.find(key);
  if (it == devs_.end()) return;
  finished(key);
  grid_.remove(it->second.slot);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), key), waiting_.end());
  devs_.erase(it);
}

std::vector<std::string> SnmpSchedule::advance(std::int64_t now_ns) {
  std::vector<std::string> missed;
  while (auto ev = grid_.pop(now_ns)) {
    const std::string& key = keys_[ev->slot];
    Entry& e = devs_.at(key);
    if (e.busy || e.waiting) {
      missed.push_back(key);
      continue;
    }
    e.waiting = true;
    waiting_.push_back(key);
  }
  return missed;
}

void SnmpSchedule::poll_now(const std::string& key) {
  auto it = devs_.find(key);
  if (it == devs_.end() || it->second.busy || it->second.waiting) return;
  it->second.waiting = true;
  waiting_.push_back(key);
}

std::optional<std::string> SnmpSchedule::start_next() {
  if (inflight_ >= max_inflight_) return std::nullopt;
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    Entry& e = devs_.at(*it);
    if (!e.usm_key.empty() && usm_busy_.count(e.usm_key)) continue;
    std::string key = std::move(*it);
    waiting_.erase(it);
    e.waiting = false;
    e.busy = true;
    e.usm_busy = e.usm_key;
    if (!e.usm_busy.empty()) usm_busy_.insert(e.usm_busy);
    ++inflight_;
    return key;
  }
  return std::nullopt;
}

void SnmpSchedule::finished(const std::string& key) {
  auto it = devs_.find(key);
  if (it == devs_.end() || !it->second.busy) return;
  Entry& e = it->second;
  e.busy = false;
  if (!e.usm_busy.empty()) usm_busy_.erase(e.usm_busy);
  e.usm_busy.clear();
  --inflight_;
}

}  // namespace siteprobe::probes
