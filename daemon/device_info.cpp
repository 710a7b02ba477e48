#include "daemon/device_info.h"

namespace siteprobe {

Exposition::Parts DeviceInfo::parts() const {
  std::shared_ptr<const View> v;
  {
    std::lock_guard<std::mutex> l(mu_);
    v = view_;
  }
  if (!v || v->devices.empty()) return [](std::string&) { return false; };
  using Item = std::pair<std::shared_ptr<const probes::DeviceLabels>, const Device*>;
  // The items are the view's own entries, by pointer: the view stays alive with the closure.
  std::vector<const Item*> items;
  items.reserve(v->devices.size());
  for (const auto& d : v->devices) items.push_back(&d);
  return [inner = family_parts<const Item*>(std::move(items), {{header("siteprobe_device_info"),
                                                                [](std::string& out, const Item* it) {
                                                                  const Device& d = *it->second;
                                                                  out += "siteprobe_device_info{";
                                                                  out += it->first->text;
                                                                  // Reserved names (metrics/families.cpp):
                                                                  // never among the device's own labels.
                                                                  out += ',';
                                                                  append_label(out, "address", d.address);
                                                                  out += ',';
                                                                  append_label(out, "criticality",
                                                                               d.criticality);
                                                                  if (d.primary_path)
                                                                    out += ",path=\"primary\"";
                                                                  if (!d.profile.empty()) {
                                                                    out += ',';
                                                                    append_label(out, "profile", d.profile);
                                                                  }
                                                                  out += "} 1\n";
                                                                }}}),
          v](std::string& out) mutable { return inner(out); };
}

}  // namespace siteprobe
