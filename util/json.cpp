#include "util/json.h"

#include <cstdint>

#include "util/text.h"

namespace siteprobe::json {
namespace {

constexpr int kMaxDepth = 64;

struct Reader {
  std::string_view s;
  std::size_t i = 0;
  std::string err;

  bool fail(const std::string& what) {
    if (err.empty()) err = "offset " + std::to_string(i) + ": " + what;
    return false;
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool literal(std::string_view word) {
    if (s.substr(i, word.size()) != word) return fail("unexpected character");
    i += word.size();
    return true;
  }
  static void put_utf8(std::string& o, std::uint32_t c) {
    if (c < 0x80) {
      o += static_cast<char>(c);
    } else if (c < 0x800) {
      o += static_cast<char>(0xC0 | (c >> 6));
      o += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      o += static_cast<char>(0xE0 | (c >> 12));
      o += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      o += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      o += static_cast<char>(0xF0 | (c >> 18));
      o += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      o += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      o += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  bool hex4(std::uint32_t& v) {
    if (s.size() - i < 4) return fail("truncated \\u escape");
    v = 0;
    for (int k = 0; k < 4; ++k, ++i) {
      const char c = s[i];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return fail("bad \\u escape");
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return true;
  }
  bool string(std::string& o) {
    ++i;  // the opening quote
    while (true) {
      if (i >= s.size()) return fail("unterminated string");
      const char c = s[i];
      if (c == '"') {
        ++i;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        const std::size_t n = text::sequence(s.substr(i));
        if (n == 0) return fail("invalid UTF-8 in a string");
        o.append(s.substr(i, n));
        i += n;
        continue;
      }
      if (++i >= s.size()) return fail("unterminated string");
      const char e = s[i++];
      switch (e) {
        case '"':
          o += '"';
          break;
        case '\\':
          o += '\\';
          break;
        case '/':
          o += '/';
          break;
        case 'b':
          o += '\b';
          break;
        case 'f':
          o += '\f';
          break;
        case 'n':
          o += '\n';
          break;
        case 'r':
          o += '\r';
          break;
        case 't':
          o += '\t';
          break;
        case 'u': {
          std::uint32_t c1 = 0;
          if (!hex4(c1)) return false;
          if (c1 >= 0xD800 && c1 < 0xDC00) {  // a high surrogate needs its low half
            std::uint32_t c2 = 0;
            if (s.substr(i, 2) != "\\u") return fail("lone surrogate");
            i += 2;
            if (!hex4(c2)) return false;
            if (c2 < 0xDC00 || c2 > 0xDFFF) return fail("lone surrogate");
            c1 = 0x10000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
          } else if (c1 >= 0xDC00 && c1 < 0xE000) {
            return fail("lone surrogate");
          }
          put_utf8(o, c1);
          break;
        }
        default:
          --i;
          return fail("bad escape");
      }
    }
  }
  bool number(std::string& o) {
    const std::size_t b = i;
    const auto digits = [&] {
      const std::size_t d = i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
      return i > d;
    };
    if (i < s.size() && s[i] == '-') ++i;
    if (i < s.size() && s[i] == '0')
      ++i;
    else if (!digits())
      return fail("bad number");
    if (i < s.size() && s[i] == '.' && (++i, !digits())) return fail("bad number");
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      if (!digits()) return fail("bad number");
    }
    o.assign(s.substr(b, i - b));
    return true;
  }
  bool value(Value& v, int depth) {
    if (depth > kMaxDepth) return fail("nested too deep");
    ws();
    if (i >= s.size()) return fail("unexpected end");
    const char c = s[i];
    if (c == '{') {
      v.type = Value::Type::Object;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') return ++i, true;
      while (true) {
        ws();
        if (i >= s.size() || s[i] != '"') return fail("expected a member name");
        std::string key;
        if (!string(key)) return false;
        ws();
        if (i >= s.size() || s[i] != ':') return fail("expected ':'");
        ++i;
        Value m;
        if (!value(m, depth + 1)) return false;
        v.members[key] = std::move(m);
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == '}') return ++i, true;
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.type = Value::Type::Array;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') return ++i, true;
      while (true) {
        v.items.emplace_back();
        if (!value(v.items.back(), depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == ']') return ++i, true;
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') return v.type = Value::Type::String, string(v.text);
    if (c == 't') return v.type = Value::Type::Bool, v.boolean = true, literal("true");
    if (c == 'f') return v.type = Value::Type::Bool, literal("false");
    if (c == 'n') return literal("null");
    if (c == '-' || (c >= '0' && c <= '9')) return v.type = Value::Type::Number, number(v.text);
    return fail("unexpected character");
  }
};

}  // namespace

const Value* Value::get(const std::string& key) const {
  static const Value kNull;
  if (type != Type::Object) return &kNull;
  const auto it = members.find(key);
  return it == members.end() ? &kNull : &it->second;
}

bool parse(std::string_view s, Value& out, std::string& err) {
  Reader r;
  r.s = s;
  out = Value{};
  if (!r.value(out, 0)) return err = r.err, false;
  r.ws();
  if (r.i != s.size())
    return err = "offset " + std::to_string(r.i) + ": trailing data after the value", false;
  return true;
}

}  // namespace siteprobe::json
