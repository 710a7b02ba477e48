// Path diagnosis at run time (docs/runbook.md#what-the-trace-told-you): where does the
// path toward a site break?
//
// When a site turns `down` (its parents answer: a site behind a down parent is `unreachable`, so
// only the top-most down site is traced), one TTL-limited trace (probes/trace.h) runs toward its
// router. Sites with an `expected_path` are also traced every trace.interval, and
// siteprobe_path_changed says whether the hops matched. Traces are rate-limited over all sites
// (trace.max_per_minute, a token bucket); the rest wait their turn in order.
//
// The last hop that answered is exported (siteprobe_path_last_hop_info, siteprobe_path_hops), carried
// by the SiteDown alert's `path` annotation and shown in the readiness report (note()).
// Threading: loop thread; the exposition is read by HTTP threads.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "inventory/config.h"
#include "metrics/series.h"
#include "probes/trace.h"

namespace siteprobe {

class PathTraces {
 public:
  void set_tracer(probes::TraceRequestFn fn) { request_ = std::move(fn); }
  // Keeps the results of sites still there, and drops waiting traces of sites that are gone.
  void configure(std::shared_ptr<const Config> config, std::int64_t now);
  // A site turned down at `now` (unix seconds): trace it now, or when a token frees up.
  void on_site_down(const std::string& site, std::int64_t now);
  // A site turned unreachable (a parent is down): the parent's trace is the one that tells, so
  // this site's waiting or running trace is dropped, and its last result with it.
  void on_site_unreachable(const std::string& site);
  // Refills the bucket, starts waiting and periodic traces.
  void tick(std::int64_t now);
  // "path ends after 10.77.3.1, hop 2" for the readiness report; "" when there is no trace.
  std::string note(const std::string& site) const;
  std::shared_ptr<const Exposition> exposition() const { return text_; }

 private:
  struct Last {
    probes::TraceResult r;
    std::int64_t at = 0;
    int changed = -1;  // siteprobe_path_changed: -1 unknown (no expected_path, or not reached yet)
  };
  void start(const std::string& site);
  void done(const std::string& site, const probes::TraceResult& r);
  bool take_token(std::int64_t now);
  void render();

  probes::TraceRequestFn request_;
  std::shared_ptr<const Config> config_;
  std::map<std::string, Last> last_;              // by site id
  std::deque<std::string> waiting_;               // site ids, oldest first
  std::map<std::string, std::int64_t> periodic_;  // sites with an expected_path: next trace due
  std::set<std::string> running_;
  std::set<std::string> discard_;                 // running traces of sites that turned unreachable meanwhile
  std::map<std::string, std::uint64_t> results_;  // siteprobe_path_traces_total by result
  double tokens_ = 0;
  std::int64_t tokens_at_ = 0;
  std::shared_ptr<StaticText> text_ = std::make_shared<StaticText>();
};

}  // namespace siteprobe
