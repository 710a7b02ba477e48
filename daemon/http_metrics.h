// The /metrics body: the registry's text, then every exposition a part at a time as the client
// reads it, gzipped on the way when asked. It never holds the whole body (a 100k-target scrape is
// 340 MB of text).
#pragma once

#include <microhttpd.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/http_guard.h"
#include "metrics/series.h"

namespace siteprobe {

// True if an Accept-Encoding header lists gzip with a non-zero quality.
bool accepts_gzip(const char* accept_encoding);

// An MHD response streaming `registry` and then `all` (which must outlive it), holding `slot` until
// MHD frees it; gzipped if `want_gzip` and zlib starts (`gzip` says which). Null if out of memory.
MHD_Response* metrics_response(std::string registry,
                               const std::vector<std::shared_ptr<const Exposition>>& all, InFlight::Slot slot,
                               bool want_gzip, bool& gzip);

}  // namespace siteprobe
