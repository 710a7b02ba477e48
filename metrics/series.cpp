#include "metrics/series.h"

#include <algorithm>
#include <cmath>

#include "metrics/families.h"
#include "util/text.h"

namespace siteprobe {

std::string render_labels(const prometheus::Labels& labels) {
  std::string out;
  for (const auto& [k, value] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    // Invalid UTF-8 in one label value makes Prometheus drop the whole scrape: whatever a caller
    // forgot to sanitize is made valid here (U+FFFD), so no input can blank a target.
    const std::string fixed = text::valid_utf8(value) ? std::string() : text::sanitize_utf8(value);
    for (char c : fixed.empty() ? value : fixed) {
      if (c == '\\' || c == '"')
        out += '\\', out += c;
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
    out += '"';
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

Histogram::Histogram(std::vector<double> b)
    : bounds(std::move(b)), buckets(std::make_unique<Count[]>(bounds.size() + 1)) {
  for (double x : bounds) {
    std::string s = "le=\"";
    append_value(s, x);
    le.push_back(s + "\"");
  }
}

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
