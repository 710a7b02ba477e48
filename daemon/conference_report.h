// After a conference: its quality report (issue #13; docs/runbook.md#after-the-conference).
//
// From the start to the end of each occurrence it sums, per participant device, the daemon's own
// ICMP rounds (loss, RTT, IPDV as the rounds' mean jitter, and the E-model MOS of those) and, per
// participant site, its state changes and the seconds it spent down or unreachable; each row also
// carries the device's last path-test result. When the occurrence ends its report is kept until the
// next one ends; while one is under way, it is served as it stands. It needs no Prometheus: CSV
// (RFC 4180) or Markdown on /conference-report?conference=NAME&format=csv|markdown, and
// `siteprobe readiness --conference NAME --report csv|markdown`.
//
// Times are unix seconds on an injected clock (tick(now)). A reload keeps the accumulators of the
// devices that stay. Threading: loop thread, except report(), which HTTP threads call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/site_state.h"
#include "inventory/config.h"
#include "probes/path_test.h"
#include "probes/probe.h"

namespace siteprobe {

class ConferenceReports {
 public:
  void configure(std::shared_ptr<const Config> config, const SiteStates& states);
  void on_round(std::uint32_t slot, const probes::RoundResult& r);
  void on_site_change(const std::string& site_id, SiteState to, std::int64_t now);
  void on_path_test(const std::string& key, const probes::PathTestSummary& p);
  // Opens the windows of occurrences that started, closes (and keeps) those that ended.
  void tick(std::int64_t now, const SiteStates& states);
  // `format`: "csv" or "markdown". status: 200, 404 (no such conference, or none held yet), 400.
  std::string report(const std::string& name, const std::string& format, int& status) const;

 private:
  struct Dev {
    std::string district, site, site_name, device, role;
    std::uint64_t attempted = 0, received = 0;
    double rtt_sum = 0, jitter_sum = 0;  // seconds, weighted by replies
  };
  struct SiteAcc {
    SiteState state = SiteState::Unknown;
    std::int64_t since = 0, down_s = 0;
    int changes = 0;
  };
  struct Window {
    std::int64_t start = 0, end = 0, last = 0;  // `last`: the time rows were last rendered
    std::map<std::string, Dev> devs;            // by device key, in no particular order
    std::vector<std::string> order;             // device keys in tree order
    std::map<std::string, SiteAcc> sites;       // by site id
  };
  struct Text {
    std::string csv, md;
  };
  void participants(const Conference& c, Window& w, const SiteStates* states, std::int64_t now);
  void rebuild_slots();
  void render(const Conference& c, Window& w, std::int64_t now, bool done);

  std::shared_ptr<const Config> config_;
  std::map<std::string, std::uint32_t> slot_of_;         // device key -> SiteStates slot
  std::map<std::string, Window> open_;                   // by conference name: the occurrence under way
  std::vector<std::vector<Dev*>> by_slot_;               // slot -> the open windows' rows of that device
  std::map<std::string, probes::PathTestSummary> path_;  // by device key: the last result

  mutable std::mutex mu_;
  std::map<std::string, Text> live_, last_;  // by conference name
};

}  // namespace siteprobe
