// Call-readiness of video-conference endpoints: can this endpoint take a call right now?
//
// An endpoint is a device with a call-service check (SIP or H.323; by default every vc_endpoint
// and mcu). It is ready when all of these hold, and otherwise not ready for the first that fails:
//   site_down          its site is down or unreachable (site_state)
//   on_backup_path     its site answers over a backup uplink only (`backup_parents`): a 4G
//                      backup rarely carries a conference
//   device_down        it does not answer ping (its damped ICMP verdict is failing)
//   call_service_down  every configured call service failed its last check (SIP not 2xx, H.323
//                      port not accepting)
//   low_mos            its E-model MOS over the site_state window is below readiness.min_mos
//   unknown            not measured yet (no ICMP verdict, MOS or call-service answer so far)
// The verdicts are exported as metrics and as a plain-text report grouped by district, served on
// /readiness and printed by `siteprobe readiness`.
//
// Threading: configure(), on_check() and evaluate() run on the loop; parts() and report() on
// HTTP threads.
#pragma once

#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/site_state.h"
#include "daemon/status_i18n.h"
#include "inventory/config.h"
#include "metrics/series.h"
#include "probes/registry.h"

namespace siteprobe {

class Readiness final : public Exposition {
 public:
  enum Reason { Ready, Unknown, SiteDown, DeviceDown, CallServiceDown, LowMos, OnBackupPath };
  static const char* name(Reason r);

  // Keeps the last check results of endpoints that are still there.
  void configure(std::shared_ptr<const Config> config);
  void on_check(const std::string& key, const probes::CheckResult& r);
  // What is known of a down site's path ("path ends after 10.77.3.1, hop 2"), added to its detail.
  void set_site_note(std::function<std::string(const std::string& site)> fn) { site_note_ = std::move(fn); }
  // Recomputes every endpoint's verdict and re-renders the metrics and the report.
  void evaluate(const SiteStates& states);
  Reason reason(const std::string& key) const;
  Parts parts() const override { return text_.parts(); }
  // The /readiness page; `all_ready` is false when any endpoint is not ready.
  std::string report(bool& all_ready, i18n::Lang lang = i18n::Lang::En) const;
  // The not-ready endpoints by district (as in the report), and how many endpoints there are.
  struct Row {
    std::string group, group_name, site, site_name, device;
    Reason reason;
    std::string detail;
  };
  std::vector<Row> rows(std::size_t& total) const;

 private:
  struct Endpoint {
    std::size_t site = 0;
    const Device* device = nullptr;
    std::string labels;
    std::vector<probes::CallService> services;        // from the probe registry
    std::map<std::string, probes::CheckResult> last;  // by service name
    Reason reason = Unknown;
    std::string detail;
  };
  std::shared_ptr<const Config> config_;
  std::function<std::string(const std::string&)> site_note_;
  std::map<std::string, Endpoint> endpoints_;  // by "site/device"
  StaticText text_;
  mutable std::mutex mu_;
  std::vector<Row> rows_;  // the report's data, as of the last evaluate()
  std::size_t total_ = 0;
  double min_mos_ = 0;
  std::time_t at_ = 0;
  bool evaluated_ = false;
};

}  // namespace siteprobe
