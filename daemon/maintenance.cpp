#include "daemon/maintenance.h"

#include <ctime>

#include "inventory/calendar.h"

namespace siteprobe {
namespace {

std::string local_time(std::int64_t t, int offset) {
  const auto local = static_cast<time_t>(t + offset);
  std::tm tm{};
  gmtime_r(&local, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M", &tm);
  return b;
}

}  // namespace

void Maintenance::configure(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  on_.assign(config_->maintenance.size(), false);
  fresh_ = true;
}

void Maintenance::tick(std::int64_t now) {
  if (!config_) return;
  std::vector<bool> on(config_->maintenance.size());
  for (std::size_t i = 0; i < on.size(); ++i) {
    const auto o = maintenance_occurrence(config_->maintenance[i], now);
    on[i] = o && o->first <= now;
  }
  // The next-start gauge moves when an occurrence ends; otherwise nothing changes between starts
  // and ends, so a render per minute at most keeps it exact enough.
  if (!fresh_ && on == on_ && now - rendered_at_ < 60) return;
  fresh_ = false;
  on_ = on;
  rendered_at_ = now;
  std::string targets, active, next;
  for (std::size_t i = 0; i < on.size(); ++i) {
    const MaintenanceWindow& w = config_->maintenance[i];
    append_line(active, "siteprobe_maintenance_window_active",
                render_labels({{"window", w.name}, {"reason", w.reason}, {"ticket", w.ticket}}),
                on[i] ? 1.0 : 0.0);
    if (const auto o = maintenance_occurrence(w, now))
      append_line(next, "siteprobe_maintenance_next_start_timestamp_seconds",
                  render_labels({{"window", w.name}}), static_cast<double>(o->first));
    if (!on[i]) continue;
    for (const auto& s : w.sites)
      append_line(targets, "siteprobe_maintenance",
                  render_labels({{"site", s}, {"window", w.name}, {"reason", w.reason}}), 1.0);
    for (const auto& d : w.devices) {
      const auto slash = d.find('/');
      append_line(targets, "siteprobe_maintenance",
                  render_labels({{"site", d.substr(0, slash)},
                                 {"device", d.substr(slash + 1)},
                                 {"window", w.name},
                                 {"reason", w.reason}}),
                  1.0);
    }
  }
  std::string out;
  if (!on.empty())
    out = header("siteprobe_maintenance") + targets + header("siteprobe_maintenance_window_active") + active +
          header("siteprobe_maintenance_next_start_timestamp_seconds") + next;
  text_->set(std::move(out));
}

std::string Maintenance::list(const Config& c, std::int64_t at) {
  if (c.maintenance.empty()) return "No maintenance windows in " + c.file + "\n";
  std::string on_now, later, over;
  for (const auto& w : c.maintenance) {
    const auto o = maintenance_occurrence(w, at);
    const auto count = [](std::size_t n, const char* what) {
      return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
    };
    const std::string what = w.name + ": " + w.targets_text + " (" + count(w.sites.size(), "site") +
                             (w.devices.empty() ? "" : ", " + count(w.devices.size(), "device")) + "); " +
                             w.reason + (w.ticket.empty() ? "" : " [" + w.ticket + "]") + "\n";
    if (!o)
      over += "  " + what;
    else if (o->first <= at)
      on_now += "  " + what + "    muted until " + local_time(o->second, w.utc_offset_seconds) + " " +
                w.time_zone + "\n";
    else
      later += "  " + what + "    next " + local_time(o->first, w.utc_offset_seconds) + " to " +
               local_time(o->second, w.utc_offset_seconds) + " " + w.time_zone + "\n";
  }
  std::string out = "Maintenance at " + local_time(at, c.maintenance.front().utc_offset_seconds) + " " +
                    c.maintenance.front().time_zone + " (" + c.file + "):\n";
  out += "On now (alerts muted):\n" + (on_now.empty() ? "  none\n" : on_now);
  out += "Coming:\n" + (later.empty() ? "  none\n" : later);
  if (!over.empty()) out += "Over (one-off windows in the past):\n" + over;
  return out;
}

}  // namespace siteprobe
