#include "daemon/device_info.h"

namespace siteprobe {

namespace {
using Item = DeviceInfo::View::Item;

void line(std::string& out, const Item* it) {
  const Device& d = *it->second;
  out += "siteprobe_device_info{";
  out += it->first->text;
  // Reserved label names (metrics/families.cpp): never among the device's own labels.
  out += ',';
  append_label(out, "address", d.address);
  out += ',';
  append_label(out, "criticality", d.criticality);
  if (d.primary_path) out += ",path=\"primary\"";
  if (!d.profile.empty()) {
    out += ',';
    append_label(out, "profile", d.profile);
  }
  out += "} 1\n";
}
}  // namespace

Exposition::Parts DeviceInfo::parts() const {
  std::shared_ptr<const View> v;
  {
    std::lock_guard<std::mutex> l(mu_);
    v = view_;
  }
  if (!v || v->devices.empty()) return [](std::string&) { return false; };
  // The view's own entries, by pointer: the closure keeps the view alive.
  std::vector<const Item*> items;
  items.reserve(v->devices.size());
  for (const auto& d : v->devices) items.push_back(&d);
  auto inner = family_parts<const Item*>(std::move(items), {{header("siteprobe_device_info"), line}});
  return [inner = std::move(inner), v](std::string& out) mutable { return inner(out); };
}

}  // namespace siteprobe
