#include "daemon/http_guard.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

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

bool RateLimiter::available(const std::string& key, GuardClock::time_point now) const {
  const auto it = buckets_.find(key);
  if (it != buckets_.end()) return tokens(it->second, now) >= 1;
  if (buckets_.size() < max_keys_) return true;
  return std::any_of(buckets_.begin(), buckets_.end(),
                     [&](const auto& b) { return tokens(b.second, now) >= burst_; });
}

bool take_both(RateLimiter& per_key, const std::string& key, RateLimiter& global,
               GuardClock::time_point now) {
  return per_key.available(key, now) && global.take("", now) && per_key.take(key, now);
}

std::string client_key(const std::string& address) {
  in6_addr a{};
  if (address.find(':') == std::string::npos || inet_pton(AF_INET6, address.c_str(), &a) != 1) return address;
  std::fill(a.s6_addr + 8, a.s6_addr + 16, 0);
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(AF_INET6, &a, text, sizeof text)) return address;
  return std::string(text) + "/64";
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

bool ExpiringSet::hit(const std::string& key, GuardClock::time_point now) {
  const auto it = until_.find(key);
  if (it == until_.end() || now >= it->second) return false;
  it->second = now + ttl_;
  return true;
}

void ExpiringSet::insert(const std::string& key, GuardClock::time_point now) {
  if (until_.size() >= max_)
    for (auto it = until_.begin(); it != until_.end();) it = now >= it->second ? until_.erase(it) : ++it;
  if (until_.size() >= max_) until_.clear();
  until_[key] = now + ttl_;
}

std::optional<std::string> basic_credentials(const char* header) {
  if (!header || strncasecmp(header, "Basic ", 6) != 0) return std::nullopt;
  std::string in = header + 6;
  while (!in.empty() && in.back() == ' ') in.pop_back();
  if (in.empty() || in.size() % 4 != 0 || in.size() > 4096) return std::nullopt;
  std::size_t pad = 0;
  while (pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
  if (pad > 2) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < in.size() - pad; ++i) {
    const char ch = in[i];
    int v;
    if (ch >= 'A' && ch <= 'Z')
      v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z')
      v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9')
      v = ch - '0' + 52;
    else if (ch == '+')
      v = 62;
    else if (ch == '/')
      v = 63;
    else
      return std::nullopt;  // not base64, or '=' inside
    acc = ((acc << 6) | static_cast<std::uint32_t>(v)) & 0xffffffu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (out.find(':') == std::string::npos) return std::nullopt;
  return out;
}

}  // namespace siteprobe
