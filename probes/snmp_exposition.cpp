#include "probes/snmp_exposition.h"

#include <algorithm>

#include "metrics/families.h"
#include "probes/snmp_mib.h"

namespace siteprobe::probes {
namespace {

// Order of the built-in families on /metrics (HELP and TYPE from metrics/families.cpp).
const char* const kF[] = {"siteprobe_snmp_up",
                          "siteprobe_snmp_poll_duration_seconds",
                          "siteprobe_snmp_polls_total",
                          "siteprobe_snmp_errors_total",
                          "siteprobe_snmp_pdus_sent_total",
                          "siteprobe_snmp_pdus_received_total",
                          "siteprobe_snmp_max_repetitions",
                          "siteprobe_snmp_uptime_seconds",
                          "siteprobe_snmp_device_reboots_total",
                          "siteprobe_snmp_device_info",
                          "siteprobe_snmp_interface_oper_status",
                          "siteprobe_snmp_interface_admin_status",
                          "siteprobe_snmp_interface_uplink",
                          "siteprobe_snmp_interface_speed_bytes_per_second",
                          "siteprobe_snmp_interface_high_capacity",
                          "siteprobe_snmp_interface_received_bytes_total",
                          "siteprobe_snmp_interface_sent_bytes_total",
                          "siteprobe_snmp_interface_received_unicast_packets_total",
                          "siteprobe_snmp_interface_sent_unicast_packets_total",
                          "siteprobe_snmp_interface_receive_errors_total",
                          "siteprobe_snmp_interface_transmit_errors_total",
                          "siteprobe_snmp_interface_receive_discards_total",
                          "siteprobe_snmp_interface_transmit_discards_total"};
// Not in kF: rendered once for the prober, not per device.
const char* const kLoadFamilies[] = {"siteprobe_snmp_polls_in_flight", "siteprobe_snmp_polls_waiting",
                                     "siteprobe_snmp_sessions_kept"};
const char* const kTraffic[4] = {"siteprobe_snmp_interface_received_bytes_total",
                                 "siteprobe_snmp_interface_sent_bytes_total",
                                 "siteprobe_snmp_interface_received_unicast_packets_total",
                                 "siteprobe_snmp_interface_sent_unicast_packets_total"};
const char* const kErrs[4] = {
    "siteprobe_snmp_interface_receive_errors_total", "siteprobe_snmp_interface_transmit_errors_total",
    "siteprobe_snmp_interface_receive_discards_total", "siteprobe_snmp_interface_transmit_discards_total"};

// Lines into one family's text (V: double, or std::uint64_t for counters, printed as integers).
// The map is looked up by string_view, and at a family's first line only: a std::string key per
// line was a malloc per sample, and a lookup per line a tenth of the render. `rows`: how many
// lines the family will get, reserved at its first (growing a family's text line by line cost a
// reallocation and copy every few interfaces).
struct PerRow {
  SnmpText& out;
  std::string_view family;
  std::size_t rows = 1;
  std::string* text = nullptr;
  template <class V>
  void add(const std::string& labels, V v) {
    if (!text) {
      auto it = out.find(family);
      if (it == out.end()) {
        it = out.emplace(std::string(family), std::string()).first;
        it->second.reserve(rows * (family.size() + labels.size() + 24));
      }
      text = &it->second;
    }
    append_line(*text, family, labels, v);
  }
};
template <class V>
void line(SnmpText& out, std::string_view family, const std::string& labels, V v) {
  PerRow{out, family}.add(labels, v);
}

}  // namespace

const std::vector<std::string> SnmpDeviceState::kErrorKinds = {
    "timeout",      "auth",       "too_big", "no_such_name",  "decode",   "not_increasing",
    "error_status", "unresolved", "send",    "too_many_rows", "oversized"};

const std::vector<std::string>& snmp_builtin_families() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const char* f : kF) v.emplace_back(f);
    for (const char* f : kLoadFamilies) v.emplace_back(f);
    return v;
  }();
  return names;
}

void SnmpDeviceState::count_error(const std::string& kind, std::uint64_t n) {
  errors_[kind] += n;
}
void SnmpDeviceState::failed(const std::string& kind) {
  count_error(kind);
}

void SnmpDeviceState::poll_done(bool ok, double duration_s, int max_repetitions) {
  up_ = ok;
  polled_ = true;
  ++polls_;
  duration_ = duration_s;
  max_rep_ = max_repetitions;
}

void SnmpDeviceState::render(const std::string& labels, SnmpText& out) const {
  const std::string sep = labels.empty() ? "" : ",";
  line(out, kF[0], labels, up_ ? 1.0 : 0.0);
  if (polled_) line(out, kF[1], labels, duration_);
  line(out, kF[2], labels, polls_);
  // Error kinds only once they occurred: eleven always-zero series per device were a third of a
  // router's series (issue #12); the dashboards sum their rates, where a missing series is 0.
  for (const auto& k : kErrorKinds)
    if (auto it = errors_.find(k); it != errors_.end() && it->second != 0)
      line(out, kF[3], labels + sep + label("kind", k), it->second);
  line(out, kF[4], labels, sent_);
  line(out, kF[5], labels, received_);
  if (max_rep_ > 0) line(out, kF[6], labels, static_cast<double>(max_rep_));
  if (ticks_) line(out, kF[7], labels, static_cast<double>(*ticks_) / 100.0);
  line(out, kF[8], labels, reboots_);
  if (have_system_)
    line(out, kF[9],
         labels + sep + label("sys_descr", sys_descr_) + "," + label("sys_name", sys_name_) + "," +
             label("sys_object_id", sys_oid_),
         1.0);
  const std::size_t n = ifaces_.size();
  PerRow oper{out, kF[10], n}, admin{out, kF[11], n}, uplink{out, kF[12], n}, speed{out, kF[13], n},
      hc{out, kF[14], n};
  PerRow traffic[4] = {
      {out, kTraffic[0], n}, {out, kTraffic[1], n}, {out, kTraffic[2], n}, {out, kTraffic[3], n}};
  PerRow errs[4] = {{out, kErrs[0], n}, {out, kErrs[1], n}, {out, kErrs[2], n}, {out, kErrs[3], n}};
  for (const auto& [idx, f] : ifaces_) {
    const std::string l = labels + sep + label("if_alias", f.alias) + "," +
                          label("if_index", std::to_string(idx)) + "," + label("if_name", f.name);
    oper.add(l, f.oper);
    admin.add(l, f.admin);
    uplink.add(l, f.uplink ? 1.0 : 0.0);
    speed.add(l, f.speed_bps / 8);
    hc.add(l, f.hc ? 1.0 : 0.0);
    for (int k = 0; k < 4; ++k)
      if (f.src[k]) traffic[k].add(l, f.total[k]);
    for (int k = 0; k < 4; ++k)
      if (f.err[k].have) errs[k].add(l, f.err[k].total);
  }
  for (const auto& c : custom_)
    line(out, c.family, labels + (c.labels.empty() ? "" : sep + c.labels), c.value);
}

void SnmpExposition::drop(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  by_key_.erase(key);
}

void SnmpExposition::render(const std::string& key, const std::function<void(Text&)>& fill) {
  const auto drop_empty = [](Text& t) {
    for (auto it = t.begin(); it != t.end();) it = it->second.empty() ? t.erase(it) : std::next(it);
  };
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_key_.find(key);
    // Only the map holds it: no scrape reads it, and none can take it while the lock is held.
    if (it != by_key_.end() && it->second.use_count() == 1) {
      std::atomic_thread_fence(std::memory_order_acquire);  // after the last scrape's reads of it
      for (auto& kv : *it->second) kv.second.clear();
      fill(*it->second);
      drop_empty(*it->second);
      return;
    }
  }
  auto t = std::make_shared<Text>();
  fill(*t);
  drop_empty(*t);
  std::lock_guard<std::mutex> l(mu_);
  by_key_[key] = std::move(t);
}

void SnmpExposition::set_custom(std::map<std::string, std::pair<std::string, std::string>> c) {
  std::lock_guard<std::mutex> l(mu_);
  custom_ = std::make_shared<const decltype(c)>(std::move(c));
}

Exposition::Parts SnmpExposition::parts() const {
  using T = std::shared_ptr<const Text>;
  std::vector<T> texts;
  std::shared_ptr<const std::map<std::string, std::pair<std::string, std::string>>> custom;
  {
    std::lock_guard<std::mutex> l(mu_);
    texts.reserve(by_key_.size());
    for (const auto& [k, t] : by_key_) texts.push_back(t);
    custom = custom_;
  }
  std::vector<SeriesFamily<T>> families;  // those some device has
  const auto each = [&](const std::string& name, const Family& f) {
    if (std::none_of(texts.begin(), texts.end(), [&](const T& t) { return t->count(name); })) return;
    std::string h;
    append_header(h, name, f.type, f.help);
    families.push_back({std::move(h), [name](std::string& out, const T& t) {
                          if (const auto it = t->find(name); it != t->end()) out += it->second;
                        }});
  };
  for (const char* name : kF) each(name, family(name));
  if (custom)
    for (const auto& [name, th] : *custom) each(name, Family{name, th.first, th.second});
  std::string load = header(kLoadFamilies[0]);
  load += std::string(kLoadFamilies[0]) + " " + std::to_string(in_flight_.load()) + "\n";
  append_header(load, kLoadFamilies[1]);
  load += std::string(kLoadFamilies[1]) + " " + std::to_string(waiting_.load()) + "\n";
  append_header(load, kLoadFamilies[2]);
  load += std::string(kLoadFamilies[2]) + " " + std::to_string(kept_.load()) + "\n";
  families.push_back({std::move(load), [](std::string&, const T&) {}});
  return family_parts(std::move(texts), std::move(families));
}

}  // namespace siteprobe::probes
