// The daemon owns the libuv loop and everything on it: config, probers, DNS, signals, self metrics.
// Components start in order and stop in reverse. Everything runs on the loop thread, except the
// HTTP server's threads, which only read metrics.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon/conference.h"
#include "daemon/conference_report.h"
#include "daemon/device_info.h"
#include "daemon/http.h"
#include "daemon/maintenance.h"
#include "daemon/notify.h"
#include "daemon/path_tests.h"
#include "daemon/path_trace.h"
#include "daemon/peers.h"
#include "daemon/readiness.h"
#include "daemon/site_state.h"
#include "daemon/status.h"
#include "inventory/config.h"
#include "inventory/shard.h"
#include "probes/registry.h"

namespace siteprobe {

struct Options {
  std::string config_file;
  std::string listen_address = "127.0.0.1:9723";  // loopback: nothing is served to the network unasked
  WebConfig web;                                  // --web.config.file: TLS and basic auth
  bool enable_lifecycle = false;                  // POST /-/reload
  ShardSpec shard;                                // --shard i/N (docs/scale-out.md)
  std::string vantage;                            // --vantage NAME, on siteprobe_shard_info
  std::vector<std::string> peers;                 // --peer URL: other vantages, siteprobe_peer_up
};

// What a reload changes, for its log line: "sites added 1 (bk.new); devices changed 2 (bk/r1, bk/vc)",
// or "no site or device changed". A device is "site/device"; it changed if any of its effective
// settings or the contents of its SNMP auth profile did. Up to 10 names per kind are listed.
std::string describe_changes(const Config& before, const Config& after);

class Daemon {
 public:
  explicit Daemon(Options opts);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Loads the inventory, opens the probe sockets and binds HTTP. Returns false (errors logged) on
  // any failure; the caller exits non-zero.
  bool start();
  LoadResult load(const std::string& file) const;
  // Runs until SIGTERM/SIGINT, then closes every handle. Returns the process exit code.
  int run();

 private:
  struct DnsRequest;

  // SIGHUP and POST /-/reload: the inventory is read and validated in libuv's thread pool, so
  // probing goes on meanwhile, and swapped in on the loop. `done`, if given, gets the inventory's
  // errors (none: reloaded) once it is. A reload asked for while one runs follows it (they
  // coalesce: every request asked during a reload gets the result of the next one).
  using ReloadDone = std::function<void(const std::vector<std::string>& errors)>;
  void reload(ReloadDone done = nullptr);
  void start_reload();
  void reloaded(LoadResult r);
  void apply(std::shared_ptr<const Config> cfg);
  void resolve_all();
  void on_resolved(DnsRequest* req, int status, addrinfo* res);
  void shutdown();

  Options opts_;
  uv_loop_t loop_{};
  std::shared_ptr<prometheus::Registry> registry_;
  std::atomic<bool> ready_{false};
  HttpServer http_;
  std::shared_ptr<const Config> config_;
  struct Running {
    const probes::ProbeType* type;
    std::unique_ptr<probes::Prober> prober;
  };
  std::vector<Running> probers_;  // one per row of probes::probe_types()

  // DNS: device key -> host name, for devices whose address is not a literal.
  std::map<std::string, std::string> dns_names_;
  std::map<std::string, prometheus::Labels> dns_labels_;
  std::set<DnsRequest*> dns_pending_;
  std::set<std::string> dns_failing_;

  UvHandle<uv_signal_t> sig_term_, sig_int_, sig_hup_;
  UvHandle<uv_timer_t> lag_timer_, dns_timer_, stall_timer_;
  Watchdog watchdog_;
  std::uint64_t lag_last_ = 0, stall_last_ = 0;
  bool stopping_ = false;
  struct LoadJob;
  LoadJob* loading_ = nullptr;                            // the reload running in the thread pool
  std::vector<ReloadDone> reload_waiting_, reload_next_;  // of the running one, of the next one
  bool reload_again_ = false;
  bool loop_closed_ = false;

  std::shared_ptr<StaticText> info_;
  std::shared_ptr<DeviceInfo> device_info_ = std::make_shared<DeviceInfo>();
  std::shared_ptr<StatusBoard> board_ = std::make_shared<StatusBoard>();  // the status page
  std::shared_ptr<SiteStates> states_;
  std::shared_ptr<Readiness> readiness_ = std::make_shared<Readiness>();
  std::shared_ptr<PathTests> path_tests_ = std::make_shared<PathTests>();
  std::shared_ptr<Conferences> conferences_ = std::make_shared<Conferences>();
  std::vector<probes::Target> targets_;  // as last applied: a pre-flight re-applies them faster
  std::uint64_t boost_gen_ = 0;          // Conferences::boost_generation() they were applied at
  void apply_targets(bool boost_only);
  std::shared_ptr<Maintenance> maintenance_ = std::make_shared<Maintenance>();
  std::unique_ptr<Peers> peers_;
  std::shared_ptr<PathTraces> traces_ = std::make_shared<PathTraces>();  // where a down site's path ends
  std::shared_ptr<ConferenceReports> reports_ = std::make_shared<ConferenceReports>();  // after the call
  prometheus::Family<prometheus::Counter>& dns_failures_;
  prometheus::Gauge& reload_ok_;
  prometheus::Gauge& reload_ts_;
  prometheus::Counter& reloads_failed_;
  prometheus::Gauge& loop_lag_;
  prometheus::Counter& loop_stalls_;
  prometheus::Histogram& loop_lateness_;
};

}  // namespace siteprobe
