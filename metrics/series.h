// Per-target metric series, written by the loop thread and rendered straight to the Prometheus text
// format by HTTP threads.
//
// prometheus-cpp keeps a label map per series per family and copies every sample on each scrape:
// about 14 KB of memory per target and 650 ms per scrape at 10k targets. A prober instead keeps one
// small struct of atomics per target with its label set rendered once, and a SeriesSet lists them
// for the scrape. The loop thread is the only writer of values (relaxed atomics); the set itself
// changes only on reload, under its mutex.
#pragma once

#include <prometheus/labels.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace siteprobe {

// Writes metric families in the text exposition format; called on HTTP threads.
class Exposition {
 public:
  // One scrape's text, a part at a time: each call appends the next part to `out` (about kPart
  // bytes at most, plus one series' lines) and returns false once there was none left. It renders
  // one view of the series (taken by parts()), however long the scrape takes.
  using Parts = std::function<bool(std::string& out)>;
  static constexpr std::size_t kPart = std::size_t{64} * 1024;

  virtual ~Exposition() = default;
  virtual Parts parts() const = 0;
  // The whole text at once.
  void render(std::string& out) const {
    for (Parts p = parts(); p(out);) {
    }
  }
};

// The parts of `text`, in slices of kPart bytes.
inline Exposition::Parts slices(std::shared_ptr<const std::string> text) {
  return [text = std::move(text), pos = std::size_t{0}](std::string& out) mutable {
    if (!text || pos == text->size()) return false;
    const std::size_t n = std::min(Exposition::kPart, text->size() - pos);
    out.append(*text, pos, n);
    pos += n;
    return true;
  };
}

// A metric family of a snapshot: its HELP and TYPE lines, then `lines` of each item.
template <typename T>
struct SeriesFamily {
  std::string header;
  std::function<void(std::string& out, const T& item)> lines;
};

// The parts of `families` over the items `all`, family after family.
template <typename T>
Exposition::Parts family_parts(std::vector<T> all, std::vector<SeriesFamily<T>> families) {
  return [all = std::move(all), families = std::move(families), f = std::size_t{0},
          i = std::size_t{0}](std::string& out) mutable {
    if (f == families.size()) return false;
    if (i == 0) out += families[f].header;
    for (const std::size_t end = out.size() + Exposition::kPart; i < all.size() && out.size() < end; ++i)
      families[f].lines(out, all[i]);
    if (i == all.size()) ++f, i = 0;
    return true;
  };
}

// `a="x",b="y"` with values escaped, keys in order: the inside of a series' braces.
std::string render_labels(const prometheus::Labels& labels);
// `key="value"`, the value escaped as by render_labels.
void append_label(std::string& out, std::string_view key, std::string_view value);
void append_value(std::string& out, double v);
inline void append_value(std::string& out, std::uint64_t v) {
  char b[24];
  out.append(b, static_cast<std::size_t>(std::to_chars(b, b + sizeof b, v).ptr - b));
}
// "# HELP" and "# TYPE" lines of a custom family (SNMP objects from the inventory)...
void append_header(std::string& out, std::string_view name, std::string_view type, std::string_view help);
// ... and of a built-in one, from metrics/families.h.
void append_header(std::string& out, std::string_view name);
inline std::string header(std::string_view name) {
  std::string out;
  append_header(out, name);
  return out;
}
// `name{labels} value` (`name value` without labels), a line.
template <typename V>
void append_line(std::string& out, std::string_view name, const std::string& labels, V value) {
  out += name;
  if (labels.empty()) {
    out += ' ';
  } else {
    out += '{';
    out += labels;
    out += "} ";
  }
  append_value(out, value);
  out += '\n';
}

// A gauge or counter the loop thread sets and HTTP threads read.
struct Value {
  std::atomic<double> v{0};
  void set(double x) { v.store(x, std::memory_order_relaxed); }
  double get() const { return v.load(std::memory_order_relaxed); }
};
struct Count {
  std::atomic<std::uint64_t> v{0};
  void inc(std::uint64_t n = 1) { v.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Bucket bounds and the rendered `le="…"` label of each, one copy for all histograms with the
// same bounds (0.5 KB a device's RTT histogram held alone).
struct HistogramBounds {
  std::vector<double> bounds;
  std::vector<std::string> le;
};
// A histogram with fixed bounds.
struct Histogram {
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double x);
  std::uint64_t count() const;
  std::shared_ptr<const HistogramBounds> shape;
  const std::vector<double>& bounds;   // shape->bounds
  const std::vector<std::string>& le;  // shape->le
  std::unique_ptr<Count[]> buckets;    // bounds.size() + 1, not cumulative
  Value sum;
};

// The targets' series of one prober, in no particular order. T must have `std::size_t pos`.
template <typename T>
class SeriesSet {
 public:
  void add(const std::shared_ptr<T>& s) {
    std::lock_guard<std::mutex> l(mu_);
    s->pos = items_.size();
    items_.push_back(s);
  }
  void remove(const std::shared_ptr<T>& s) {
    std::lock_guard<std::mutex> l(mu_);
    items_.back()->pos = s->pos;
    std::swap(items_[s->pos], items_.back());
    items_.pop_back();
  }
  // A consistent list to render without holding the lock; the shared_ptrs keep removed series
  // alive until the scrape is done with them.
  std::vector<std::shared_ptr<const T>> snapshot() const {
    std::lock_guard<std::mutex> l(mu_);
    return {items_.begin(), items_.end()};
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<T>> items_;
};

// Text that changes only on reload, such as the info series of every site and device.
class StaticText final : public Exposition {
 public:
  void set(std::string text) {
    text.shrink_to_fit();  // held until the next set(): no growth slack (100k devices' info lines)
    auto t = std::make_shared<const std::string>(std::move(text));
    std::lock_guard<std::mutex> l(mu_);
    text_ = std::move(t);
  }
  Parts parts() const override {
    std::lock_guard<std::mutex> l(mu_);
    return slices(text_);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::string> text_;
};

}  // namespace siteprobe
