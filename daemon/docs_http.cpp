#include "daemon/docs_http.h"

#include <string>

namespace siteprobe {

void add_doc_pages(HttpServer& http) {
  for (std::size_t i = 0; i < kDocPageCount; ++i) {
    const DocPage& d = kDocPages[i];
    auto page = [html = d.html](const HttpServer::PageRequest&) {
      return HttpServer::PageAnswer{
          200,
          "text/html; charset=utf-8",
          html,
          {{"Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"},
           {"X-Content-Type-Options", "nosniff"}}};
    };
    http.add_rich_page("/docs/" + std::string(d.name), page);
    if (!*d.name) http.add_rich_page("/docs", page);
  }
}

}  // namespace siteprobe
