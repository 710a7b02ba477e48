#include "metrics/series.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>

#include "metrics/families.h"
#include "util/text.h"

namespace siteprobe {

void append_label(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  out += "=\"";
  // Invalid UTF-8 in one label value makes Prometheus drop the whole scrape: whatever a caller
  // forgot to sanitize is made valid here (U+FFFD), so no input can blank a target.
  const std::string fixed = text::valid_utf8(value) ? std::string() : text::sanitize_utf8(value);
  for (char c : fixed.empty() ? value : std::string_view(fixed)) {
    if (c == '\\' || c == '"')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  out += '"';
}

std::string render_labels(const prometheus::Labels& labels) {
  std::string out;
  for (const auto& [k, value] : labels) {
    if (!out.empty()) out += ',';
    append_label(out, k, value);
  }
  return out;
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char b[32];
    out.append(b, static_cast<std::size_t>(std::to_chars(b, b + sizeof b, v).ptr - b));
  }
}

void append_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  const std::string fixed = text::valid_utf8(help) ? std::string() : text::sanitize_utf8(help);
  for (const char c : fixed.empty() ? help : std::string_view(fixed)) {  // HELP escapes only \\ and \n
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_header(std::string& out, std::string_view name) {
  const Family& f = family(name);
  append_header(out, f.name, f.type, f.help);
}

namespace {
// The shared bounds equal to `b`: made on first use, dropped with the last histogram using them.
std::shared_ptr<const HistogramBounds> intern_bounds(const std::vector<double>& b) {
  static std::mutex mu;
  static std::map<std::vector<double>, std::weak_ptr<const HistogramBounds>> known;
  std::lock_guard<std::mutex> l(mu);
  if (auto it = known.find(b); it != known.end())
    if (auto s = it->second.lock()) return s;
  for (auto it = known.begin(); it != known.end();)
    it = it->second.expired() ? known.erase(it) : std::next(it);
  auto s = std::make_shared<HistogramBounds>();
  s->bounds = b;
  for (double x : b) {
    std::string le = "le=\"";
    append_value(le, x);
    s->le.push_back(le + "\"");
  }
  known[b] = s;
  return s;
}
}  // namespace

Histogram::Histogram(const std::vector<double>& b)
    : shape(intern_bounds(b)),
      bounds(shape->bounds),
      le(shape->le),
      buckets(std::make_unique<Count[]>(bounds.size() + 1)) {}

void Histogram::observe(double x) {
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), x) - bounds.begin());
  buckets[i].inc();
  sum.set(sum.get() + x);  // the loop thread is the only writer
}

std::uint64_t Histogram::count() const {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i <= bounds.size(); ++i) n += buckets[i].get();
  return n;
}

}  // namespace siteprobe
