// Text from the network made safe to export: label values must be valid UTF-8 (Prometheus drops
// the whole scrape otherwise) and bounded (a device must not blow up the scrape).
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace siteprobe::text {

// The length of the UTF-8 sequence at the start of s (non-empty), or 0 if it is not valid UTF-8
// (overlong forms, surrogates and code points past U+10FFFF are not).
std::size_t sequence(std::string_view s);

// True if s is valid UTF-8 (control characters are valid).
bool valid_utf8(std::string_view s);

// Invalid UTF-8 bytes (also overlong forms, surrogates, code points past U+10FFFF) become U+FFFD;
// control characters become spaces, except NULs, which are dropped; trailing spaces are removed.
std::string sanitize_utf8(std::string_view s);

// The longest prefix of `s` of at most `max` bytes that does not cut a UTF-8 sequence in two
// (for valid UTF-8, such as the result of sanitize_utf8).
std::string truncate_utf8(std::string_view s, std::size_t max);

// A CSV cell (RFC 4180: quoted when it holds a comma, quote or line break); a cell a spreadsheet
// would run as a formula (= + - @ first) gets a leading apostrophe.
std::string csv_cell(const std::string& s);
// A Markdown table cell: `|` escaped, line breaks as spaces.
std::string md_cell(const std::string& s);

}  // namespace siteprobe::text
