#include "daemon/http_metrics.h"

#include <strings.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "daemon/log.h"

namespace siteprobe {
namespace {

// One /metrics answer, rendered a part at a time as the client reads it and gzipped on the way if
// asked (at the fastest level, as Prometheus' client_golang does): it never holds the whole body.
struct Scrape {
  static constexpr uInt kChunk = 64 * 1024;  // gzip output is made in slices of this

  Scrape(std::string registry, const std::vector<std::shared_ptr<const Exposition>>& all, InFlight::Slot s)
      : parts(slices(std::make_shared<const std::string>(std::move(registry)))),
        expositions(all),
        slot(std::move(s)) {}
  ~Scrape() {
    if (gzip) deflateEnd(&z);
  }
  Scrape(const Scrape&) = delete;
  Scrape& operator=(const Scrape&) = delete;

  // Turns gzip on; false if zlib could not start.
  bool start_gzip() {
    return gzip = deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  // MHD's content reader: the next bytes of the body.
  ssize_t read(char* buf, std::size_t max) {
    const std::string& out = gzip ? zipped : text;
    while (sent == out.size()) {
      if (last) return MHD_CONTENT_READER_END_OF_STREAM;
      text.clear();
      sent = 0;
      last = !next_part();
      if (gzip && !deflate_part()) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    const std::size_t n = std::min(max, out.size() - sent);
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes for MHD, not a C string
    std::memcpy(buf, out.data() + sent, n);
    sent += n;
    return static_cast<ssize_t>(n);
  }

 private:
  // Renders the next part into `text`; false once every exposition is done.
  bool next_part() {
    for (;;) {
      if (parts(text)) return true;
      if (next == expositions.size()) return false;
      parts = expositions[next++]->parts();
    }
  }
  // `text` into `zipped`, and the gzip trailer after the last part.
  bool deflate_part() {
    zipped.clear();
    z.next_in = reinterpret_cast<Bytef*>(text.data());
    z.avail_in = static_cast<uInt>(text.size());
    int rc = Z_OK;
    do {
      const std::size_t used = zipped.size();
      zipped.resize(used + kChunk);
      z.next_out = reinterpret_cast<Bytef*>(&zipped[used]);
      z.avail_out = kChunk;
      rc = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      zipped.resize(zipped.size() - z.avail_out);
      if (rc == Z_STREAM_ERROR) return false;
    } while (z.avail_out == 0);
    return z.avail_in == 0 && (!last || rc == Z_STREAM_END);
  }

  Exposition::Parts parts;  // of the registry, then of expositions[next - 1]
  const std::vector<std::shared_ptr<const Exposition>>& expositions;
  std::size_t next = 0;
  std::string text, zipped;  // the part being sent, as rendered and as gzipped
  std::size_t sent = 0;      // bytes of it sent
  bool last = false, gzip = false;
  z_stream z{};
  InFlight::Slot slot;
};

}  // namespace

bool accepts_gzip(const char* h) {
  std::istringstream in(h ? h : "");
  for (std::string item; std::getline(in, item, ',');) {
    const auto semi = item.find(';');
    std::string name = item.substr(0, semi);
    name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
    if (strcasecmp(name.c_str(), "gzip") != 0) continue;
    const auto q = item.find("q=", semi == std::string::npos ? item.size() : semi);
    return q == std::string::npos || std::strtod(item.c_str() + q + 2, nullptr) > 0;
  }
  return false;
}

MHD_Response* metrics_response(std::string registry,
                               const std::vector<std::shared_ptr<const Exposition>>& all, InFlight::Slot slot,
                               bool want_gzip, bool& gzip) {
  auto scrape = std::make_unique<Scrape>(std::move(registry), all, std::move(slot));
  gzip = want_gzip && scrape->start_gzip();
  MHD_Response* resp = MHD_create_response_from_callback(
      MHD_SIZE_UNKNOWN, Scrape::kChunk,
      [](void* s, uint64_t, char* buf, std::size_t max) noexcept -> ssize_t {
        try {
          return static_cast<Scrape*>(s)->read(buf, max);
        } catch (const std::exception& e) {
          log(LogLevel::Error, "scrape failed", {{"error", e.what()}});
        } catch (...) {
        }
        return MHD_CONTENT_READER_END_WITH_ERROR;  // the client sees a truncated body
      },
      // NOLINTNEXTLINE(cppcoreguidelines-owning-memory)
      scrape.get(), [](void* s) noexcept { delete static_cast<Scrape*>(s); });
  if (resp) static_cast<void>(scrape.release());  // now MHD's, freed by the callback above
  return resp;
}

}  // namespace siteprobe
