#include "util/text.h"

#include <cstdint>

namespace siteprobe::text {

std::size_t sequence(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char c = p[0];
  const std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k)
    if ((p[k] & 0xC0) != 0x80) return 0;
  if (len == 1) return 1;
  std::uint32_t cp = c & (0x7F >> len);
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[k] & 0x3F);
  static const std::uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) ? len : 0;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0, len; i < s.size(); i += len)
    if (!(len = sequence(s.substr(i)))) return false;
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const std::size_t len = sequence(s.substr(i));
    if (!len) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else if (len == 1 && (c < 0x20 || c == 0x7F)) {
      if (c != 0) out += ' ';  // trailing NULs from C agents are dropped
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string truncate_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // s[n] continues a sequence
  return std::string(s.substr(0, n));
}

std::string csv_cell(const std::string& s) {
  std::string v = !s.empty() && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') ? "'" + s : s;
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string o = "\"";
  for (char c : v) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

std::string md_cell(const std::string& s) {
  std::string o;
  for (char c : s)
    o += c == '|' ? std::string("\\|") : c == '\n' || c == '\r' ? std::string(" ") : std::string(1, c);
  return o;
}

}  // namespace siteprobe::text
