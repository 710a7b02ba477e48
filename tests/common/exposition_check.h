// A strict reader of the Prometheus text exposition format (version 0.0.4), for tests and fuzz
// targets: returns "" if `text` is an exposition Prometheus accepts whole, else the first problem
// with its line. It checks what makes Prometheus drop a scrape: metric and label name syntax,
// label value escapes and UTF-8, values, HELP/TYPE once per family and before its samples,
// samples of a family together, no series twice.
#pragma once

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "util/text.h"

namespace siteprobe::test {

inline bool name_ok(std::string_view n, bool label) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

inline std::string check_exposition(const std::string& text) {
  if (!text.empty() && text.back() != '\n') return "does not end in a newline";
  if (!text::valid_utf8(text)) return "not valid UTF-8";
  std::map<std::string, std::string> type;  // family -> type
  std::set<std::string> help, series, closed;
  std::string current;  // the family whose samples come now
  std::size_t line_no = 0;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t nl = text.find('\n', at);
    const std::string_view line(text.data() + at, nl - at);
    at = nl + 1;
    ++line_no;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    if (line.empty()) continue;
    if (line[0] == '#') {
      const bool is_help = line.rfind("# HELP ", 0) == 0, is_type = line.rfind("# TYPE ", 0) == 0;
      if (!is_help && !is_type) continue;  // a comment
      const std::string_view rest = line.substr(7);
      const std::string name(rest.substr(0, rest.find(' ')));
      if (!name_ok(name, false)) return where + "bad family name \"" + name + "\"";
      if (closed.count(name) || name == current) return where + "HELP/TYPE of " + name + " after its samples";
      if (is_help && !help.insert(name).second) return where + "second HELP for " + name;
      if (is_type) {
        const std::string t(rest.substr(name.size() + (name.size() < rest.size())));
        if (t != "counter" && t != "gauge" && t != "histogram" && t != "summary" && t != "untyped")
          return where + "bad type \"" + t + "\"";
        if (!type.emplace(name, t).second) return where + "second TYPE for " + name;
      }
      for (std::size_t i = name.size() + 1; is_help && i < rest.size(); ++i)
        if (rest[i] == '\\' && (i + 1 == rest.size() || (rest[++i] != '\\' && rest[i] != 'n')))
          return where + "bad escape in HELP";
      continue;
    }
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    const std::string name(line.substr(0, i));
    if (!name_ok(name, false)) return where + "bad metric name \"" + name + "\"";
    std::string family = name;
    if (!type.count(family))
      for (const char* s : {"_bucket", "_sum", "_count"})
        if (name.size() > std::strlen(s) &&
            name.compare(name.size() - std::strlen(s), std::string::npos, s) == 0 &&
            type.count(name.substr(0, name.size() - std::strlen(s))))
          family = name.substr(0, name.size() - std::strlen(s));
    if (family != current) {
      if (closed.count(family)) return where + "samples of " + family + " are not together";
      if (!current.empty()) closed.insert(current);
      current = family;
    }
    std::set<std::string> labels;
    std::string key = name + "{";
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t eq = line.find('=', i);
        if (eq == std::string_view::npos) return where + "label without =";
        const std::string lname(line.substr(i, eq - i));
        if (!name_ok(lname, true) || lname.rfind("__", 0) == 0)
          return where + "bad label name \"" + lname + "\"";
        if (!labels.insert(lname).second) return where + "label " + lname + " twice";
        if (eq + 1 >= line.size() || line[eq + 1] != '"') return where + "label value not quoted";
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j)
          if (line[j] == '\\') {
            if (j + 1 >= line.size() || (line[j + 1] != '\\' && line[j + 1] != '"' && line[j + 1] != 'n'))
              return where + "bad escape in a label value";
            ++j;
          }
        if (j >= line.size()) return where + "unterminated label value";
        key += std::string(line.substr(i, j + 1 - i)) + ",";
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return where + "unterminated label set";
      ++i;
    }
    if (!series.insert(key).second) return where + "series twice: " + key;
    if (i >= line.size() || line[i] != ' ') return where + "no value";
    const std::string value(line.substr(i + 1, line.find(' ', i + 1) - i - 1));
    if (value != "NaN" && value != "+Inf" && value != "-Inf") {
      char* end = nullptr;
      std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0') return where + "bad value \"" + value + "\"";
    }
  }
  return "";
}

}  // namespace siteprobe::test
