// Minimal JSON writing for the status page (strings escaped, numbers finite or null).
#pragma once

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace siteprobe::json {

inline void str(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c == '<') {
      out += "\\u003c";  // safe inside <script>
    } else {
      out += ch;
    }
  }
  out += '"';
}

// `digits` after the point; NaN and infinities as null.
inline void num(std::string& out, double v, int digits = 3) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  out += s;
}

// ,"key":"value" for each of `fields` (string values).
inline void members(std::string& out,
                    std::initializer_list<std::pair<const char*, std::string_view>> fields) {
  for (const auto& [k, v] : fields) {
    out += ",\"";
    out += k;
    out += "\":";
    str(out, v);
  }
}

}  // namespace siteprobe::json
