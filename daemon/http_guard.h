// The pure parts of the HTTP layer's abuse limits (http.h uses them under its own mutex): token
// buckets per client address, and digests that expire. The clock is passed in, so tests never sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>

namespace siteprobe {

using GuardClock = std::chrono::steady_clock;

// One token bucket per key: `burst` tokens, one more every `every`. At most `max_keys` buckets:
// when full, buckets that have refilled are forgotten; if none has, new keys are refused.
class RateLimiter {
 public:
  RateLimiter(double burst, GuardClock::duration every, std::size_t max_keys = 4096)
      : burst_(burst), every_(every), max_keys_(max_keys) {}
  // Takes a token for `key`; false if it has none left.
  bool take(const std::string& key, GuardClock::time_point now);
  // True if take(key, now) would succeed, without taking anything.
  bool available(const std::string& key, GuardClock::time_point now) const;
  // Seconds until `key` has a token again (0 if it has one).
  long retry_after(const std::string& key, GuardClock::time_point now) const;

 private:
  struct Bucket {
    double tokens;
    GuardClock::time_point at;
  };
  double tokens(const Bucket& b, GuardClock::time_point now) const;
  double burst_;
  GuardClock::duration every_;
  std::size_t max_keys_;
  std::map<std::string, Bucket> buckets_;
};

// Keys remembered for `ttl` each, at most `max` at a time (when full: expired ones go, then all).
class ExpiringSet {
 public:
  ExpiringSet(GuardClock::duration ttl, std::size_t max) : ttl_(ttl), max_(max) {}
  bool contains(const std::string& key, GuardClock::time_point now) const;
  // contains(), and a key found lives for another `ttl` from `now`.
  bool hit(const std::string& key, GuardClock::time_point now);
  void insert(const std::string& key, GuardClock::time_point now);
  std::size_t size() const { return until_.size(); }

 private:
  GuardClock::duration ttl_;
  std::size_t max_;
  std::map<std::string, GuardClock::time_point> until_;
};

// Takes a token from `per_key` for `key` and one from `global`, or neither: a client out of tokens
// does not use up the global ones, and a refusal by `global` costs the client nothing.
bool take_both(RateLimiter& per_key, const std::string& key, RateLimiter& global, GuardClock::time_point now);

// The rate-limiting key of a client address (text): IPv4 as is, IPv6 by its /64 ("2001:db8::/64"),
// since one host usually has a whole /64 to pick addresses from.
std::string client_key(const std::string& address);

// At most `max` things at a time (responses holding a /metrics body): acquire() hands out a slot,
// or an empty one when all are taken; a slot is given back when destroyed.
class InFlight {
 public:
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept : f_(o.f_) { o.f_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (f_) f_->n_.fetch_sub(1);
    }
    explicit operator bool() const { return f_ != nullptr; }

   private:
    friend class InFlight;
    explicit Slot(InFlight* f) : f_(f) {}
    InFlight* f_ = nullptr;
  };
  explicit InFlight(unsigned max) : max_(max) {}
  Slot acquire() noexcept {
    unsigned n = n_.load();
    do
      if (n >= max_) return Slot();
    while (!n_.compare_exchange_weak(n, n + 1));
    return Slot(this);
  }
  unsigned count() const { return n_.load(); }

 private:
  const unsigned max_;
  std::atomic<unsigned> n_{0};
};

// The credentials of an Authorization header: "Basic dXNlcjpwYXNz" -> "user:pass". nullopt unless
// the header is "Basic " and strict base64 (at most 4096 characters, at most two '=' of padding and
// only at the end) of text with a ':'.
std::optional<std::string> basic_credentials(const char* header);

}  // namespace siteprobe
