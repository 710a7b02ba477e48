#include "util/text.h"

#include <catch2/catch.hpp>

using namespace siteprobe::text;

TEST_CASE("sanitize_utf8 keeps valid UTF-8 and replaces everything else") {
  CHECK(sanitize_utf8("Bắc Kạn") == "Bắc Kạn");
  CHECK(sanitize_utf8("a\xff"
                      "b") ==
        "a\xEF\xBF\xBD"
        "b");                                                                      // a stray byte
  CHECK(sanitize_utf8("B\xe1\xba") == "B\xEF\xBF\xBD\xEF\xBF\xBD");                // a sequence cut short
  CHECK(sanitize_utf8("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  CHECK(sanitize_utf8("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  CHECK(sanitize_utf8("\xf4\x90\x80\x80").find("\xEF\xBF\xBD") == 0);              // past U+10FFFF
  CHECK(sanitize_utf8(std::string("a\tb\r\nc\0\0", 8)) == "a b  c");               // controls, trailing NULs
  CHECK(sanitize_utf8("") == "");
}

TEST_CASE("valid_utf8 accepts exactly what sanitize_utf8 keeps") {
  CHECK(valid_utf8("Bắc Kạn \xf0\x9f\x93\x9e\n"));
  CHECK(valid_utf8(""));
  for (const char* bad : {"a\xff", "B\xe1\xba", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"}) {
    INFO(bad);
    CHECK_FALSE(valid_utf8(bad));
    CHECK(valid_utf8(sanitize_utf8(bad)));
  }
}

TEST_CASE("truncate_utf8 cuts at a code point boundary, never inside a sequence") {
  const std::string s = "Chợ Đồn";  // "ợ" and "Đ", "ồ" are 3 and 2 bytes
  CHECK(truncate_utf8(s, 100) == s);
  CHECK(truncate_utf8(s, s.size()) == s);
  CHECK(truncate_utf8(s, 2) == "Ch");
  CHECK(truncate_utf8(s, 3) == "Ch");  // inside "ợ" (bytes 2..4)
  CHECK(truncate_utf8(s, 4) == "Ch");
  CHECK(truncate_utf8(s, 5) == "Chợ");
  CHECK(truncate_utf8(s, 0) == "");
  const std::string emoji = "\xf0\x9f\x93\x9e";  // U+1F4DE, 4 bytes
  for (std::size_t n = 0; n < 4; ++n) CHECK(truncate_utf8(emoji, n).empty());
  CHECK(truncate_utf8(sanitize_utf8(std::string(1000, '\xff')), 255).size() == 255);  // 85 × U+FFFD
}
