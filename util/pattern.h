// Full-match patterns on names that come from the network (ifName), in linear time.
//
// RE2, not std::regex: libstdc++'s regex executor recurses once per input character, so one agent
// answering ifName with 30,000 bytes overflowed the loop thread's stack (issue #20). RE2 runs in
// time linear in the input with a fixed memory budget, whatever the pattern. Its syntax is the
// common Perl/ECMAScript subset; backreferences and lookaround are rejected at `check`.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace siteprobe {

class NamePattern {
 public:
  // Why `pattern` cannot be compiled, or nullopt if it can.
  static std::optional<std::string> error(const std::string& pattern);
  explicit NamePattern(const std::string& pattern);  // a pattern that error() accepted
  bool matches(std::string_view s) const;            // the whole of s
  const std::string& pattern() const;

 private:
  std::shared_ptr<const re2::RE2> re_;  // shared: RE2 cannot be copied, settings are
};

}  // namespace siteprobe
