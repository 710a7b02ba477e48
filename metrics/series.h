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

#include <atomic>
#include <charconv>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace siteprobe {

// Writes metric families in the text exposition format; called on HTTP threads.
class Exposition {
 public:
  virtual ~Exposition() = default;
  virtual void render(std::string& out) const = 0;
};

// `a="x",b="y"` with values escaped, keys in order: the inside of a series' braces.
std::string render_labels(const prometheus::Labels& labels);
void append_value(std::string& out, double v);
inline void append_value(std::string& out, std::uint64_t v) {
  char b[24];
  out.append(b, static_cast<std::size_t>(std::to_chars(b, b + sizeof b, v).ptr - b));
}
// "# HELP" and "# TYPE" lines of a custom family (SNMP objects from the inventory)...
void append_header(std::string& out, std::string_view name, std::string_view type, std::string_view help);
// ... and of a built-in one, from metrics/families.h.
void append_header(std::string& out, std::string_view name);

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

// A histogram with fixed bounds; `le` holds the rendered `le="…"` label of each bucket.
struct Histogram {
  explicit Histogram(std::vector<double> bounds);
  void observe(double x);
  std::uint64_t count() const;
  std::vector<double> bounds;
  std::vector<std::string> le;
  std::unique_ptr<Count[]> buckets;  // bounds.size() + 1, not cumulative
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
    auto t = std::make_shared<const std::string>(std::move(text));
    std::lock_guard<std::mutex> l(mu_);
    text_ = std::move(t);
  }
  void render(std::string& out) const override {
    std::shared_ptr<const std::string> t;
    {
      std::lock_guard<std::mutex> l(mu_);
      t = text_;
    }
    if (t) out += *t;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::string> text_;
};

}  // namespace siteprobe
