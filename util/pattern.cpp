#include "util/pattern.h"

#include <re2/re2.h>

namespace siteprobe {
namespace {

RE2::Options options() {
  RE2::Options o;
  o.set_log_errors(false);  // errors are returned to `check`, not printed by RE2
  o.set_max_mem(1 << 20);   // 1 MiB per pattern: plenty for names, a bound for odd patterns
  return o;
}

}  // namespace

std::optional<std::string> NamePattern::error(const std::string& pattern) {
  const RE2 re(pattern, options());
  if (re.ok()) return std::nullopt;
  return re.error();
}

NamePattern::NamePattern(const std::string& pattern) : re_(std::make_shared<const RE2>(pattern, options())) {}

bool NamePattern::matches(std::string_view s) const {
  return re_->ok() && RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *re_);
}

const std::string& NamePattern::pattern() const {
  return re_->pattern();
}

}  // namespace siteprobe
