#include "daemon/daemon.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <tuple>

#include "daemon/docs_http.h"
#include "daemon/hardening.h"
#include "daemon/log.h"
#include "daemon/status_http.h"
#include "metrics/families.h"
#include "probes/registry.h"
#include "util/net.h"

#ifndef SITEPROBE_VERSION
#define SITEPROBE_VERSION "dev"
#endif

namespace siteprobe {
namespace {

template <typename T>
auto& build(prometheus::Registry& r, const char* name) {
  return prometheus::detail::Builder<T>().Name(name).Help(help(name)).Register(r);
}

// Logs a rejected inventory's errors, at most kLoggedErrors of them: one bad line in a generated
// file can give tens of thousands, and `siteprobe check FILE` lists them all.
void log_inventory_errors(const std::string& file, const std::vector<std::string>& errors) {
  constexpr std::size_t kLoggedErrors = 100;
  for (std::size_t i = 0; i < errors.size() && i < kLoggedErrors; ++i)
    log(LogLevel::Error, "invalid inventory", {{"error", errors[i]}});
  if (errors.size() > kLoggedErrors)
    log(LogLevel::Error, "more inventory errors not logged",
        {{"not_logged", std::to_string(errors.size() - kLoggedErrors)},
         {"all_of_them", "siteprobe check " + file}});
}

auto fields(const IcmpSettings& s) {
  return std::tie(s.interval, s.timeout, s.spacing, s.packets, s.payload_bytes, s.rtt_buckets);
}
auto fields(const SnmpSettings& s) {
  return std::tie(s.auth, s.port, s.interval, s.timeout, s.retries, s.max_repetitions, s.max_interfaces,
                  s.modules, s.interfaces_include, s.interfaces_exclude, s.uplink);
}
auto fields(const AuthProfile& a) {
  return std::tie(a.version, a.community, a.username, a.security_level, a.auth_protocol, a.auth_passphrase,
                  a.priv_protocol, a.priv_passphrase);
}
auto fields(const SipSettings& s) {
  return std::tie(s.enabled, s.transport, s.port, s.interval, s.timeout);
}

bool same_device(const Config& ca, const Device& a, const Config& cb, const Device& b) {
  if (std::tie(a.address, a.role, a.profile, a.reachability, a.tcp, a.blocks, a.criticality,
               a.primary_path) != std::tie(b.address, b.role, b.profile, b.reachability, b.tcp, b.blocks,
                                           b.criticality, b.primary_path) ||
      fields(a.icmp) != fields(b.icmp) || fields(a.sip) != fields(b.sip) ||
      a.snmp.has_value() != b.snmp.has_value())
    return false;
  if (!a.snmp) return true;
  if (fields(*a.snmp) != fields(*b.snmp)) return false;
  const auto pa = ca.auth.find(a.snmp->auth), pb = cb.auth.find(b.snmp->auth);
  return pa == ca.auth.end() || pb == cb.auth.end() ? pa == ca.auth.end() && pb == cb.auth.end()
                                                    : fields(pa->second) == fields(pb->second);
}

bool same_site(const Site& a, const Site& b) {
  return std::tie(a.name, a.level, a.parent, a.backup_parents, a.lat, a.lon, a.labels) ==
         std::tie(b.name, b.level, b.parent, b.backup_parents, b.lat, b.lon, b.labels);
}

// Appends "WHAT added N (a, b); WHAT removed ...; WHAT changed ..." to `out`, for the non-empty ones.
template <typename T, typename Same>
void describe(const std::map<std::string, const T*>& before, const std::map<std::string, const T*>& after,
              Same same, const std::string& what, std::string& out) {
  std::vector<std::string> added, removed, changed;
  for (const auto& [key, v] : after) {
    const auto it = before.find(key);
    if (it == before.end())
      added.push_back(key);
    else if (!same(*it->second, *v))
      changed.push_back(key);
  }
  for (const auto& [key, v] : before)
    if (!after.count(key)) removed.push_back(key);
  for (const auto& [how, keys] : {std::pair{"added", &added}, {"removed", &removed}, {"changed", &changed}}) {
    if (keys->empty()) continue;
    out += (out.empty() ? "" : "; ") + what + " " + how + " " + std::to_string(keys->size()) + " (";
    for (std::size_t i = 0; i < keys->size() && i < 10; ++i) out += (i ? ", " : "") + (*keys)[i];
    out += keys->size() > 10 ? ", ...)" : ")";
  }
}

}  // namespace

std::string describe_changes(const Config& before, const Config& after) {
  std::map<std::string, const Site*> sites[2];
  std::map<std::string, const Device*> devices[2];
  for (int i = 0; i < 2; ++i)
    for (const auto& s : (i ? after : before).sites) {
      sites[i][s.id] = &s;
      for (const auto& d : s.devices) devices[i][Config::device_key(s, d)] = &d;
    }
  std::string out;
  describe(sites[0], sites[1], same_site, "sites", out);
  describe(
      devices[0], devices[1],
      [&](const Device& a, const Device& b) { return same_device(before, a, after, b); }, "devices", out);
  return out.empty() ? "no site or device changed" : out;
}

struct Daemon::DnsRequest {
  uv_getaddrinfo_t req{};
  Daemon* daemon = nullptr;
  std::string key, host;
};

// A reload's parse, run in libuv's thread pool.
struct Daemon::LoadJob {
  uv_work_t req{};
  Daemon* daemon = nullptr;
  std::string file;
  LoadResult result;
};

Daemon::Daemon(Options opts)
    : opts_(std::move(opts)),
      registry_(std::make_shared<prometheus::Registry>()),
      http_(registry_, ready_),
      info_(std::make_shared<StaticText>()),
      states_(std::make_shared<SiteStates>([this](const Site& s, SiteState from, SiteState to) {
        board_->on_site_change(s, from, to, unix_now());
        reports_->on_site_change(s.id, to, static_cast<std::int64_t>(std::time(nullptr)));
        if (to == SiteState::Down) traces_->on_site_down(s.id, static_cast<std::int64_t>(std::time(nullptr)));
        if (to == SiteState::Unreachable) traces_->on_site_unreachable(s.id);
        // Logged once per change, never per round.
        log(to == SiteState::Down ? LogLevel::Warn : LogLevel::Info, "site state changed",
            {{"site", s.id},
             {"name", s.name},
             {"level", s.level},
             {"from", to_string(from)},
             {"to", to_string(to)}});
      })),
      dns_failures_(build<prometheus::Counter>(*registry_, "siteprobe_dns_lookup_failures_total")),
      reload_ok_(build<prometheus::Gauge>(*registry_, "siteprobe_config_last_reload_successful").Add({})),
      reload_ts_(
          build<prometheus::Gauge>(*registry_, "siteprobe_config_last_reload_success_timestamp_seconds")
              .Add({})),
      reloads_failed_(
          build<prometheus::Counter>(*registry_, "siteprobe_config_reload_failures_total").Add({})),
      loop_lag_(build<prometheus::Gauge>(*registry_, "siteprobe_loop_lag_seconds").Add({})),
      loop_stalls_(build<prometheus::Counter>(*registry_, "siteprobe_loop_stalls_total").Add({})),
      loop_lateness_(build<prometheus::Histogram>(*registry_, "siteprobe_loop_lateness_seconds")
                         .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.002, 0.005, 0.0075, 0.01,
                                                                          0.015, 0.02, 0.05, 0.1, 0.25, 1})) {
  build<prometheus::Gauge>(*registry_, "siteprobe_build_info").Add({{"version", SITEPROBE_VERSION}}).Set(1);
  states_->on_backup_change([this](const Site& s, bool on) {
    board_->on_backup_path(s, on, unix_now());
    log(on ? LogLevel::Warn : LogLevel::Info, on ? "site on backup path" : "site back on primary path",
        {{"site", s.id}, {"name", s.name}});
  });
  if (uv_loop_init(&loop_) != 0) throw std::runtime_error("uv_loop_init failed");
  for (auto* h : {&sig_term_, &sig_int_, &sig_hup_}) {
    uv_must(h->init([this](uv_signal_t* s) { return uv_signal_init(&loop_, s); }), "uv_signal_init");
    h->get()->data = this;
  }
  for (auto* t : {&lag_timer_, &dns_timer_, &stall_timer_}) {
    uv_must(t->init([this](uv_timer_t* s) { return uv_timer_init(&loop_, s); }), "uv_timer_init");
    t->get()->data = this;
  }
}

// Also the path of a failed start: every handle is closed and the loop ends empty.
Daemon::~Daemon() {
  if (loop_closed_) return;
  shutdown();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

// The inventory, cut to this instance's shard (inventory/shard.h). Runs in the thread pool on reload.
LoadResult Daemon::load(const std::string& file) const {
  auto r = probes::load_inventory(file);
  if (r.config && opts_.shard.count > 1) r.config = shard_config(*r.config, opts_.shard);
  return r;
}

bool Daemon::start() {
  auto r = load(opts_.config_file);
  if (!r.config) {
    log_inventory_errors(opts_.config_file, r.errors);
    log(LogLevel::Error, "inventory rejected",
        {{"file", opts_.config_file}, {"errors", std::to_string(r.errors.size())}});
    return false;
  }
  if (auto w = inline_secret_warning(*r.config); !w.empty()) log(LogLevel::Warn, w);
  for (const auto& w : r.warnings) log(LogLevel::Warn, "inventory warning", {{"warning", w}});
  probes::ProbeContext ctx;
  ctx.loop = &loop_;
  ctx.registry = registry_.get();
  ctx.on_round = [this](std::uint32_t device_index, const probes::RoundResult& round) {
    watchdog_.progress();
    states_->on_round(device_index, round);
    board_->on_round(device_index, round, unix_now());
    reports_->on_round(device_index, round);
  };
  ctx.prefetch_round = [this](std::uint32_t device_index, bool deep) {
    states_->prefetch(device_index, deep);
    board_->prefetch(device_index, deep);
  };
  ctx.on_check = [this](const std::string& key, const probes::CheckResult& c) {
    readiness_->on_check(key, c);
    board_->on_check(key, c, unix_now());
  };
  ctx.log_info = [](const std::string& msg, const std::string& k, const std::string& v) {
    log(LogLevel::Info, msg, {{k.c_str(), v}});
  };
  ctx.on_snmp = [this](const std::string& key, const probes::SnmpResult& res) {
    states_->on_snmp(key, res);
    board_->on_snmp(key, res, unix_now());
  };
  ctx.probe_now = [this](const std::string& key) {
    for (auto& p : probers_) p.prober->probe_now(key);
  };
  ctx.on_trap = [](const probes::TrapEvent& t) {
    log(LogLevel::Info, "snmp trap",
        {{"site", t.site},
         {"device", t.device},
         {"kind", t.kind},
         {"severity", t.severity},
         {"version", t.version},
         {"ifindex", t.if_index >= 0 ? std::to_string(t.if_index) : ""},
         {"suppressed", std::to_string(t.suppressed)}});
  };
  ctx.on_path_test = [this](const std::string& key, const probes::PathTestSummary& p) {
    path_tests_->on_result(key, p);
  };
  for (const auto& type : probes::probe_types()) {
    try {
      probers_.push_back({&type, type.make(ctx)});
    } catch (const probes::ProbeError& e) {
      log(LogLevel::Error, e.what(), {{"probe", type.name}});
      return false;
    }
    http_.add(probers_.back().prober->exposition());
  }
  path_tests_->set_prober(ctx.request_path_tests);
  traces_->set_tracer(ctx.request_trace);
  readiness_->set_site_note([t = traces_](const std::string& site) { return t->note(site); });
  // The ICMP sockets are open for the life of the process and no other probe needs a raw socket,
  // so the capability can go (docs/install.md#capabilities).
  if (auto e = drop_net_raw(); !e.empty()) log(LogLevel::Warn, "cannot drop CAP_NET_RAW", {{"error", e}});
  http_.add(info_);
  http_.add(device_info_);
  http_.add(states_);
  http_.add(states_->quality());
  http_.add(readiness_);
  http_.add_page("/path-tests", [p = path_tests_] { return std::pair{200, p->report()}; });
  http_.add(conferences_);
  http_.add(maintenance_->exposition());
  http_.add(traces_->exposition());
  path_tests_->subscribe(
      [c = conferences_, r = reports_](const std::string& key, const probes::PathTestSummary& p) {
        c->on_path_test(key, p);
        r->on_path_test(key, p);
      });
  // ?conference=NAME&format=csv|markdown: the quality report of its occurrence under way or last.
  http_.add_rich_page("/conference-report", [r = reports_](const HttpServer::PageRequest& req) {
    const char* name = req.arg("conference");
    const char* format = req.arg("format");
    int status = 400;
    std::string body = name ? r->report(name, format ? format : "markdown", status)
                            : std::string("give ?conference=NAME (and &format=csv or markdown)\n");
    const bool csv = status == 200 && format && std::string(format) == "csv";
    return HttpServer::PageAnswer{status,
                                  status != 200 ? "text/plain; charset=utf-8"
                                  : csv         ? "text/csv; charset=utf-8"
                                                : "text/markdown; charset=utf-8",
                                  body,
                                  {}};
  });
  conferences_->set_request([this](const std::vector<std::string>& keys, const std::string& why, double bps) {
    path_tests_->request(keys, {}, bps, why);
  });
  // ?lang=vi|en; ?conference=NAME: that conference's pre-flight table.
  http_.add_rich_page("/readiness", [r = readiness_, c = conferences_](const HttpServer::PageRequest& req) {
    bool all_ready = false;
    if (const char* name = req.arg("conference")) {
      bool found = false;
      std::string body = c->report(name, found, all_ready);
      return HttpServer::PageAnswer{!found      ? 404
                                    : all_ready ? 200
                                                : 503,
                                    "text/plain; charset=utf-8",
                                    body,
                                    {}};
    }
    std::string body = r->report(all_ready, req.arg("lang") ? request_lang(req) : i18n::Lang::En);
    return HttpServer::PageAnswer{all_ready ? 200 : 503, "text/plain; charset=utf-8", body, {}};
  });
  add_status_pages(http_, board_);
  add_doc_pages(http_);
  auto on_signal = [](uv_signal_t* h, int signum) noexcept {
    auto* self = static_cast<Daemon*>(h->data);
    try {
      if (signum == SIGHUP)
        self->reload();
      else
        self->shutdown();
    } catch (const std::exception& e) {  // e.g. out of memory while loading: the old config stays
      log(LogLevel::Error, "signal handling failed", {{"error", e.what()}});
    }
  };
  for (auto [h, sig] : {std::pair{&sig_term_, SIGTERM}, {&sig_int_, SIGINT}, {&sig_hup_, SIGHUP}})
    uv_must(uv_signal_start(h->get(), on_signal, sig), "uv_signal_start");
  // Lateness of a 50 ms timer, each time; stalls: run more than 100 ms late, once per stall (it
  // restarts from when it ran).
  stall_last_ = uv_hrtime();
  uv_must(uv_timer_start(
              stall_timer_.get(),
              [](uv_timer_t* t) noexcept {
                auto* self = static_cast<Daemon*>(t->data);
                const std::uint64_t now = uv_hrtime();
                const double late = static_cast<double>(now - self->stall_last_) / 1e9 - 0.05;
                self->loop_lateness_.Observe(late > 0 ? late : 0);
                if (now - self->stall_last_ > 150000000) self->loop_stalls_.Increment();
                self->stall_last_ = now;
              },
              50, 50),
          "uv_timer_start");
  lag_last_ = uv_hrtime();
  uv_must(uv_timer_start(
              lag_timer_.get(),
              [](uv_timer_t* t) noexcept {
                auto* self = static_cast<Daemon*>(t->data);
                const std::uint64_t now = uv_hrtime();
                const double lag = static_cast<double>(now - self->lag_last_) / 1e9 - 1.0;
                self->loop_lag_.Set(lag > 0 ? lag : 0);
                self->lag_last_ = now;
                self->states_->evaluate();
                self->readiness_->evaluate(*self->states_);
                self->conferences_->tick(static_cast<std::int64_t>(std::time(nullptr)),
                                         self->readiness_.get());
                self->reports_->tick(static_cast<std::int64_t>(std::time(nullptr)), *self->states_);
                self->maintenance_->tick(static_cast<std::int64_t>(std::time(nullptr)));
                self->traces_->tick(static_cast<std::int64_t>(std::time(nullptr)));
                if (self->conferences_->boost_generation() != self->boost_gen_) self->apply_targets(true);
                self->board_->publish(*self->states_, *self->readiness_, unix_now());
              },
              1000, 1000),
          "uv_timer_start");

  apply(r.config);
  malloc_trim(0);  // the parse's and apply()'s temporaries: as after a reload (reloaded())
  peers_ = std::make_unique<Peers>(&loop_, *registry_, opts_.peers);
  if (opts_.enable_lifecycle)
    http_.enable_reload(&loop_, [this](ReloadDone done) { reload(std::move(done)); });
  http_.enable_path_tests(
      [this](const std::vector<std::string>& devices, const std::vector<std::string>& sites) {
        path_tests_->request(devices, sites, 0, "http");
      });
  if (auto e = http_.start(opts_.listen_address, opts_.web); !e.empty()) {
    log(LogLevel::Error, e);
    return false;
  }
  ready_ = true;
  log(LogLevel::Info, "siteprobe started",
      {{"version", SITEPROBE_VERSION}, {"listen", opts_.listen_address}, {"inventory", summarize(*config_)}});
  notify("READY=1\nSTATUS=" + summarize(*config_));
  watchdog_.start(&loop_);
  return true;
}

int Daemon::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  const int rc = uv_loop_close(&loop_);
  loop_closed_ = rc == 0;
  if (rc != 0) {
    log(LogLevel::Error, "event loop closed with open handles", {{"error", uv_strerror(rc)}});
    return 1;
  }
  log(LogLevel::Info, "siteprobe stopped");
  return 0;
}

void Daemon::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  if (ready_) log(LogLevel::Info, "shutting down");
  notify("STOPPING=1");
  ready_ = false;
  watchdog_.close();
  // Reload requests still waiting are answered before the HTTP server stops (it may not stop with
  // a request suspended); a reload still parsing is dropped.
  for (auto* w : {&reload_waiting_, &reload_next_}) {
    auto dones = std::move(*w);
    w->clear();
    for (auto& d : dones) d({"siteprobe is shutting down"});
  }
  http_.stop();
  for (auto& p : probers_) p.prober->close();
  if (peers_) peers_->close();
  for (auto* h : {&sig_term_, &sig_int_, &sig_hup_}) h->reset();
  for (auto* h : {&lag_timer_, &dns_timer_, &stall_timer_}) h->reset();
  // UV_EBUSY (the lookup is already running) is fine: its callback sees stopping_.
  for (auto* r : dns_pending_) (void)uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  // A reload still parsing: cancelled if not started; else its result is dropped when it ends.
  if (loading_) (void)uv_cancel(reinterpret_cast<uv_req_t*>(&loading_->req));
}

void Daemon::reload(ReloadDone done) {
  if (stopping_) return;
  if (loading_) {  // after the running one, which may have read the file before this request
    reload_again_ = true;
    if (done) reload_next_.push_back(std::move(done));
    return;
  }
  if (done) reload_waiting_.push_back(std::move(done));
  start_reload();
}

void Daemon::start_reload() {
  log(LogLevel::Info, "reloading inventory", {{"file", opts_.config_file}});
  notify("RELOADING=1\n" + monotonic_usec());
  auto job = std::make_unique<LoadJob>();
  job->daemon = this;
  job->file = opts_.config_file;
  job->req.data = job.get();
  const int rc = uv_queue_work(
      &loop_, &job->req,
      // On a worker thread: only the job's own data (load_config touches no shared state).
      [](uv_work_t* w) noexcept {
        auto* j = static_cast<LoadJob*>(w->data);
        try {
          j->result = j->daemon->load(j->file);
        } catch (const std::exception& e) {
          j->result.errors = {j->file + ": cannot load: " + e.what()};
        }
      },
      [](uv_work_t* w, int status) noexcept {
        std::unique_ptr<LoadJob> j(static_cast<LoadJob*>(w->data));
        Daemon* self = j->daemon;
        self->loading_ = nullptr;
        if (status == UV_ECANCELED || self->stopping_) return;
        try {
          self->reloaded(std::move(j->result));
        } catch (const std::exception& e) {
          log(LogLevel::Error, "reload failed", {{"error", e.what()}});
        }
      });
  if (rc != 0) {
    LoadResult r;
    r.errors = {std::string("cannot start the reload: ") + uv_strerror(rc)};
    reloaded(std::move(r));
    return;
  }
  loading_ = job.release();  // the after-work callback frees it
}

void Daemon::reloaded(LoadResult r) {
  if (r.config) {
    if (auto w = inline_secret_warning(*r.config); !w.empty()) log(LogLevel::Warn, w);
    for (const auto& w : r.warnings) log(LogLevel::Warn, "inventory warning", {{"warning", w}});
    const std::string changes = describe_changes(*config_, *r.config);
    apply(std::move(r.config));
    // The parse's temporaries and the old inventory are freed by now: give the pages back (glibc
    // keeps freed heap otherwise; a 52 MB inventory left 3 GB resident).
    malloc_trim(0);
    log(LogLevel::Info, "inventory reloaded", {{"inventory", summarize(*config_)}, {"changes", changes}});
    notify("READY=1\nSTATUS=" + summarize(*config_));
  } else {
    log_inventory_errors(opts_.config_file, r.errors);
    log(LogLevel::Error, "reload rejected; the previous inventory keeps running",
        {{"errors", std::to_string(r.errors.size())}});
    reload_ok_.Set(0);
    reloads_failed_.Increment();
    notify("READY=1");
  }
  auto waiting = std::move(reload_waiting_);
  reload_waiting_.clear();
  for (auto& d : waiting) d(r.errors);
  if (reload_again_) {  // asked for meanwhile: read the file again, as it is now
    reload_again_ = false;
    reload_waiting_ = std::move(reload_next_);
    reload_next_.clear();
    start_reload();
  }
}

void Daemon::apply(std::shared_ptr<const Config> cfg) {
  std::vector<probes::Target> targets;
  targets.reserve(cfg->device_count());
  std::map<std::string, std::string> dns_names;
  std::map<std::string, prometheus::Labels> dns_labels;
  // The info series change only here, so they are rendered once, not on every scrape.
  std::string alias_info, site_info, backup_info, shard_info;
  auto device_info = std::make_shared<DeviceInfo::View>();
  device_info->config = cfg;
  device_info->devices.reserve(cfg->device_count());
  // Only for a shard or a named vantage (docs/scale-out.md): one instance alone exports neither.
  if (opts_.shard.count > 1 || !opts_.vantage.empty())
    shard_info = header("siteprobe_shard_info") + "siteprobe_shard_info{" +
                 render_labels({{"shard", std::to_string(opts_.shard.index)},
                                {"shards", std::to_string(opts_.shard.count)},
                                {"vantage", opts_.vantage}}) +
                 "} 1\n";
  append_header(site_info, "siteprobe_site_info");
  const auto chain = cfg->chain_labels();
  Duration longest{0};
  for (const auto& s : cfg->sites) {
    prometheus::Labels sl{{"site", s.id}, {"name", s.name}, {"level", s.level}, {"parent", s.parent}};
    for (std::size_t i = 0; i < chain.size(); ++i) sl[chain[i]] = s.chain[i];
    if (s.lat) {
      char b[32];
      std::snprintf(b, sizeof b, "%.6g", *s.lat);
      sl["latitude"] = b;
      std::snprintf(b, sizeof b, "%.7g", *s.lon);
      sl["longitude"] = b;
      std::snprintf(b, sizeof b, "%.6g", *s.map_lat);
      sl["map_latitude"] = b;
      std::snprintf(b, sizeof b, "%.7g", *s.map_lon);
      sl["map_longitude"] = b;
    }
    for (const auto& [k, v] : s.labels) sl[k] = v;
    site_info += "siteprobe_site_info{" + render_labels(sl) + "} 1\n";
    if (s.shard_ancestor) {
      if (shard_info.find("siteprobe_shard_ancestor") == std::string::npos)
        shard_info += header("siteprobe_shard_ancestor");
      shard_info += "siteprobe_shard_ancestor{" + render_labels({{"site", s.id}}) + "} 1\n";
    }
    for (const auto& b : s.backup_parents) {
      if (backup_info.empty()) append_header(backup_info, "siteprobe_site_backup_parent_info");
      backup_info +=
          "siteprobe_site_backup_parent_info{" + render_labels({{"site", s.id}, {"parent", b}}) + "} 1\n";
    }
    for (const auto& old : s.formerly) {  // one series per old id: joins old series to the new site
      auto al = cfg->site_labels(s);
      al["formerly"] = old;
      alias_info += "siteprobe_site_alias_info{" + render_labels(al) + "} 1\n";
    }
    for (const auto& d : s.devices) {
      longest = std::max(longest, d.icmp.interval);
      probes::Target t{Config::device_key(s, d),
                       std::make_shared<const probes::DeviceLabels>(cfg->device_labels(s, d)), cfg, &d};
      t.site = &s;
      if (auto a = net::parse_ip(d.address)) t.address = *a;
      device_info->devices.emplace_back(t.labels, &d);
      if (t.address.ss_family == AF_UNSPEC) {
        dns_names[t.key] = d.address;
        dns_labels[t.key] = cfg->device_labels(s, d);
      }
      targets.push_back(std::move(t));
    }
  }
  // DNS failure counters: keep those of unchanged devices, drop the rest.
  for (const auto& [key, labels] : dns_labels_)
    if (!dns_labels.count(key) || dns_labels.at(key) != labels)
      dns_failures_.Remove(&dns_failures_.Add(labels));
  for (const auto& [key, labels] : dns_labels) dns_failures_.Add(labels);
  // The alias and backup-parent families appear only when some site has `formerly` or
  // `backup_parents`.
  info_->set((alias_info.empty() ? "" : header("siteprobe_site_alias_info") + alias_info) + site_info +
             backup_info + shard_info);
  device_info_->set(std::move(device_info));
  // Every device completes a round each interval: two intervals (+5 s) without any is a stall.
  using ms = std::chrono::milliseconds;
  watchdog_.expect(targets.empty() ? 0
                                   : static_cast<std::uint64_t>(
                                         std::chrono::duration_cast<ms>(2 * longest + ms(5000)).count()));
  states_->configure(cfg);
  for (auto& t : targets) t.device_index = states_->slot(t.key);  // what rounds come back with
  readiness_->configure(cfg);
  path_tests_->configure(cfg);
  conferences_->configure(cfg);
  reports_->configure(cfg, *states_);
  maintenance_->configure(cfg);
  maintenance_->tick(static_cast<std::int64_t>(std::time(nullptr)));  // on from the first scrape
  traces_->configure(cfg, static_cast<std::int64_t>(std::time(nullptr)));
  readiness_->evaluate(*states_);  // every endpoint series exists from load
  board_->configure(cfg, *states_);
  board_->publish(*states_, *readiness_, unix_now());
  config_ = std::move(cfg);
  targets_ = std::move(targets);
  apply_targets(false);
  dns_names_ = std::move(dns_names);
  dns_labels_ = std::move(dns_labels);
  reload_ok_.Set(1);
  reload_ts_.Set(
      std::floor(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()));
  resolve_all();
  const auto refresh = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(config_->dns_refresh).count());
  if (!dns_names_.empty())
    uv_must(
        uv_timer_start(
            dns_timer_.get(), [](uv_timer_t* t) noexcept { static_cast<Daemon*>(t->data)->resolve_all(); },
            refresh, refresh),
        "uv_timer_start");
  else
    uv_must(uv_timer_stop(dns_timer_.get()), "uv_timer_stop");
}

// Each prober gets only the devices its type probes, with the pre-flight's intervals. `boost_only`:
// only those intervals changed, so only the probers that run reachability and call-service checks
// need them (the others would only redo their bookkeeping).
void Daemon::apply_targets(bool boost_only) {
  boost_gen_ = conferences_->boost_generation();
  const auto& boosted = conferences_->boosted();
  for (auto& t : targets_) {
    const auto b = boosted.find(t.key);
    t.max_interval = b == boosted.end() ? Duration{0} : b->second;
  }
  for (auto& p : probers_) {
    if (boost_only && !p.type->preflight) continue;
    std::vector<probes::Target> own;
    own.reserve(std::count_if(targets_.begin(), targets_.end(),
                              [&](const probes::Target& t) { return p.type->wants(*t.device); }));
    for (const auto& t : targets_)
      if (p.type->wants(*t.device)) own.push_back(t);
    p.prober->set_targets(*config_, own);
    for (const auto& t : own)
      if (t.address.ss_family != AF_UNSPEC) p.prober->set_address(t.key, t.address);
  }
}

void Daemon::resolve_all() {
  for (const auto& [key, host] : dns_names_) {
    auto r = std::make_unique<DnsRequest>();
    r->daemon = this;
    r->key = key;
    r->host = host;
    r->req.data = r.get();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_ADDRCONFIG;
    const int rc = uv_getaddrinfo(
        &loop_, &r->req,
        [](uv_getaddrinfo_t* q, int status, addrinfo* res) noexcept {
          auto* req = static_cast<DnsRequest*>(q->data);
          req->daemon->on_resolved(req, status, res);
        },
        host.c_str(), nullptr, &hints);
    if (rc != 0) {
      on_resolved(r.release(), rc, nullptr);
      continue;
    }
    dns_pending_.insert(r.release());  // owned by the request until on_resolved
  }
}

void Daemon::on_resolved(DnsRequest* req, int status, addrinfo* res) {
  std::unique_ptr<DnsRequest> owned(req);
  dns_pending_.erase(req);
  struct Free {
    void operator()(addrinfo* a) const { uv_freeaddrinfo(a); }
  };
  std::unique_ptr<addrinfo, Free> guard(res);
  if (stopping_ || status == UV_ECANCELED) return;
  auto it = dns_names_.find(req->key);
  if (it == dns_names_.end() || it->second != req->host) return;  // device changed by a reload
  const addrinfo* a = res;
  while (a && a->ai_family != AF_INET && a->ai_family != AF_INET6) a = a->ai_next;
  if (status != 0 || !a) {
    dns_failures_.Add(dns_labels_.at(req->key)).Increment();
    if (dns_failing_.insert(req->key).second)
      log(LogLevel::Warn, "DNS lookup failed; probing the last known address, if any",
          {{"device", req->key},
           {"host", req->host},
           {"error", status ? uv_strerror(status) : "no address"}});
    return;
  }
  if (dns_failing_.erase(req->key))
    log(LogLevel::Info, "DNS lookup recovered", {{"device", req->key}, {"host", req->host}});
  sockaddr_storage ss{};
  std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
  for (auto& p : probers_) p.prober->set_address(req->key, ss);
}

}  // namespace siteprobe
