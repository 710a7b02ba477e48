#include "daemon/http_guard.h"

#include <algorithm>
#include <cmath>

namespace siteprobe {

double RateLimiter::tokens(const Bucket& b, GuardClock::time_point now) const {
  const double refill = std::chrono::duration<double>(now - b.at) / std::chrono::duration<double>(every_);
  return std::min(burst_, b.tokens + std::max(0.0, refill));
}

bool RateLimiter::take(const std::string& key, GuardClock::time_point now) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_)
      for (auto b = buckets_.begin(); b != buckets_.end();)
        b = tokens(b->second, now) >= burst_ ? buckets_.erase(b) : ++b;
    if (buckets_.size() >= max_keys_) return false;
    it = buckets_.emplace(key, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  b.tokens = tokens(b, now);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

long RateLimiter::retry_after(const std::string& key, GuardClock::time_point now) const {
  const auto it = buckets_.find(key);
  if (it == buckets_.end()) return 0;
  const double missing = 1 - tokens(it->second, now);
  return missing <= 0 ? 0
                      : static_cast<long>(std::ceil(missing * std::chrono::duration<double>(every_).count()));
}

bool ExpiringSet::contains(const std::string& key, GuardClock::time_point now) const {
  const auto it = until_.find(key);
  return it != until_.end() && now < it->second;
}

void ExpiringSet::insert(const std::string& key, GuardClock::time_point now) {
  if (until_.size() >= max_)
    for (auto it = until_.begin(); it != until_.end();) it = now >= it->second ? until_.erase(it) : ++it;
  if (until_.size() >= max_) until_.clear();
  until_[key] = now + ttl_;
}

}  // namespace siteprobe
