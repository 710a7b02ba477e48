#include "daemon/status_http.h"

namespace siteprobe {

std::string status_page(i18n::Lang lang) {
  std::string page = kStatusPageHtml;
  auto put = [&](const std::string& k, const std::string& v) {
    if (auto p = page.find(k); p != std::string::npos) page.replace(p, k.size(), v);
  };
  put("%%LANG%%", i18n::code(lang));
  put("%%I18N%%", i18n::table_json());
  return page;
}

i18n::Lang request_lang(const HttpServer::PageRequest& r) {
  if (const char* l = r.arg("lang"))
    if (auto v = i18n::parse_lang(l)) return *v;
  const char* h = r.header("Accept-Language");
  return i18n::pick_lang(h ? h : "");
}

void add_status_pages(HttpServer& http, const std::shared_ptr<const StatusBoard>& board) {
  using A = HttpServer::PageAnswer;
  constexpr const char* kJson = "application/json; charset=utf-8";
  // Both languages' pages are made once; the page varies by Accept-Language.
  auto pages = std::make_shared<const std::pair<std::string, std::string>>(status_page(i18n::Lang::En),
                                                                           status_page(i18n::Lang::Vi));
  auto page = [pages](const HttpServer::PageRequest& r) {
    return A{
        200,
        "text/html; charset=utf-8",
        request_lang(r) == i18n::Lang::Vi ? pages->second : pages->first,
        {{"Vary", "Accept-Language"},
         {"Content-Security-Policy",
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
          "img-src 'self' data:"},
         {"X-Content-Type-Options", "nosniff"}}};
  };
  http.add_rich_page("/", page);
  http.add_rich_page("/status", page);
  http.add_rich_page("/status/tree.json", [board](const HttpServer::PageRequest&) {
    return A{200, kJson, board->snapshot()->tree, {}};
  });
  http.add_rich_page("/status/live.json", [board](const HttpServer::PageRequest&) {
    return A{200, kJson, board->snapshot()->live, {}};
  });
  http.add_rich_page("/status/site.json", [board](const HttpServer::PageRequest& r) {
    const char* id = r.arg("id");
    std::string body = id ? StatusBoard::site_json(*board->snapshot(), id) : "";
    if (body.empty()) return A{404, kJson, "{\"error\":\"no such site\"}", {}};
    return A{200, kJson, std::move(body), {}};
  });
}

}  // namespace siteprobe
