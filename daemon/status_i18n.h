// The status page's and `siteprobe readiness`'s words in Vietnamese and English (issue #18).
//
// One table: every key has both languages by construction; the unit test also checks that every
// key the page asks for (t('...') in status_page.html) is in it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace siteprobe::i18n {

enum class Lang { En, Vi };

struct Entry {
  const char* key;
  const char* en;
  const char* vi;
};
const std::vector<Entry>& table();

// "en"/"vi" (also "en-US", "vi-VN"), else nullopt.
std::optional<Lang> parse_lang(std::string_view s);
const char* code(Lang l);
// The first language of an Accept-Language header that we have (q-values honoured), else En.
Lang pick_lang(std::string_view accept_language);
// The word for `key`, or the key itself if there is none (never happens for keys in table()).
const char* tr(Lang l, std::string_view key);
// {"en":{"key":"word",...},"vi":{...}} for the page.
std::string table_json();

}  // namespace siteprobe::i18n
