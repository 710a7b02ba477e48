// The documentation, served offline (issue #19 item 7): every docs/*.md rendered to HTML at build
// time (daemon/docs_html.py) and compiled in, at /docs/ (an index) and /docs/NAME, e.g.
// /docs/oncall#site-down. The alert rules' runbook links point here, so they open on a closed
// network.
#pragma once

#include <cstddef>

#include "daemon/http.h"

namespace siteprobe {

struct DocPage {
  const char* name;  // "oncall", "oncall.vi", ...; "" is the index
  const char* html;
};
extern const DocPage kDocPages[];
extern const std::size_t kDocPageCount;

void add_doc_pages(HttpServer& http);

}  // namespace siteprobe
