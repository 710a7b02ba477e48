// Maintenance windows at run time (inventory `maintenance:`, docs/inventory.md#maintenance): which
// sites and devices are in planned work now, exported so the shipped alert rules page nothing for
// them (siteprobe_maintenance), and the calendar as text for `siteprobe maintenance list`.
// Times are unix seconds on an injected clock (tick(now)). Threading: loop thread; the
// exposition is read by HTTP threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "metrics/series.h"

namespace siteprobe {

class Maintenance {
 public:
  void configure(std::shared_ptr<const Config> config);
  // Re-renders when a window starts or ends (and after configure()).
  void tick(std::int64_t now);
  std::shared_ptr<const Exposition> exposition() const { return text_; }
  // Every window: on now (at `at`) or when it next starts, with its targets, reason and ticket.
  static std::string list(const Config& c, std::int64_t at);

 private:
  std::shared_ptr<const Config> config_;
  std::vector<bool> on_;  // per window, as last rendered
  bool fresh_ = false;    // configured since the last render
  std::int64_t rendered_at_ = 0;
  std::shared_ptr<StaticText> text_ = std::make_shared<StaticText>();
};

}  // namespace siteprobe
