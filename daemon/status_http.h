// The status page's routes on the HttpServer (issue #18; docs/dashboards.md#status-page):
//   /, /status           the page (HTML, ~30 KB, embedded in the binary; ?lang=vi|en, else
//                        Accept-Language; ?wall=1 for wall mode)
//   /status/tree.json    sites, levels and coordinates (changes only with the inventory)
//   /status/live.json    states, counts, last changes, readiness (rebuilt once a second)
//   /status/site.json?id=SITE   a site's devices with their last-hour history
// All read the StatusBoard's current snapshot only (HTTP threads).
#pragma once

#include <memory>

#include "daemon/http.h"
#include "daemon/status.h"

namespace siteprobe {

extern const char* const kStatusPageHtml;
// The page with its language and words filled in.
std::string status_page(i18n::Lang lang);
void add_status_pages(HttpServer& http, const std::shared_ptr<const StatusBoard>& board);
// The language a request asks for: ?lang=, else Accept-Language.
i18n::Lang request_lang(const HttpServer::PageRequest& r);

}  // namespace siteprobe
