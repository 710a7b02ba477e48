// The socket-free core shared by the call-service probers (probes/sip.h, probes/tcp.h): every
// check sends one request per interval and waits up to its timeout for the answer.
//
// ServiceEngine keeps one slot per check (a device's SIP, its H.323 port, each of its TCP checks),
// starts it on its splayed grid (probes/scheduler.h, as ICMP does), arms a deadline per probe
// and records the outcome in the check's series. The prober does the I/O: the engine calls `start`
// with a probe id, and the prober calls finish(id, …) when it has an answer or an error. A probe
// whose deadline passes first is stopped (`stop`) and counts as a timeout; a finish() for a probe
// that is no longer in flight is ignored, so each probe completes exactly once.
//
// Threading: loop thread only; ServiceExposition::render runs on HTTP threads.
#pragma once

#include <uv.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "metrics/series.h"
#include "probes/probe.h"

namespace siteprobe::probes {

// One check of one device.
struct ServiceCheck {
  std::string key;            // the device's key, "site/device"
  std::string service;        // "sip", "h323" or the tcp check's name
  prometheus::Labels labels;  // the series' labels
  int port = 0;
  Duration interval{}, timeout{};
  bool tcp = false;           // SIP only: over TCP rather than UDP
  bool call_service = false;  // readiness counts it (CheckResult::call_service)
};

struct ServiceSeries {
  ServiceSeries(const prometheus::Labels& l, std::size_t kinds, const std::vector<double>& bounds)
      : labels(render_labels(l)), errors(std::make_unique<Count[]>(kinds)), rtt(bounds) {}
  std::size_t pos = 0;
  std::string labels;
  Count probes;
  Count classes[6];  // SIP responses by class, 1xx..6xx
  std::unique_ptr<Count[]> errors;
  Histogram rtt;
  Value up, code{std::nan("")};
};

// Renders siteprobe_sip_* (sip = true) or siteprobe_tcp_* for every check.
class ServiceExposition final : public Exposition {
 public:
  ServiceExposition(bool sip, std::vector<std::string> kinds) : sip_(sip), kinds_(std::move(kinds)) {}
  void render(std::string& out) const override;
  SeriesSet<ServiceSeries> series;

 private:
  bool sip_;
  std::vector<std::string> kinds_;
};

// Buckets of the SIP response time and TCP connect time histograms, in seconds.
const std::vector<double>& service_buckets();

class ServiceEngine {
 public:
  using StartFn = std::function<void(std::uint64_t id, const ServiceCheck& c, const sockaddr_storage& to)>;
  using IdFn = std::function<void(std::uint64_t id)>;
  static constexpr int kAnswered = -1, kTimeout = 0;  // kinds_[0] is always "timeout"

  // `kinds` names the error kinds, "timeout" first and "other" last (also used for a check whose
  // address is not resolved); `stop` aborts a probe's I/O.
  ServiceEngine(bool sip, std::vector<std::string> kinds, StartFn start, IdFn stop);
  ~ServiceEngine();
  // UDP retransmission (RFC 3261 timer E): `resend` at t1, 3·t1, 7·t1, … while a probe is in flight.
  void set_resend(std::int64_t t1_ns, IdFn resend) {
    t1_ = t1_ns;
    resend_ = std::move(resend);
  }
  void on_check(CheckFn fn) { on_check_ = std::move(fn); }
  // Reads every answer already queued on the sockets; run() calls it before any deadline expires
  // (libuv runs timers before I/O: after a stall, answers waiting in the socket would time out).
  void set_drain(std::function<void()> fn) { drain_ = std::move(fn); }
  void set_checks(const std::vector<ServiceCheck>& checks, std::int64_t now);
  void set_address(const std::string& key, const sockaddr_storage& addr);
  void run(std::int64_t now);
  std::optional<std::int64_t> next_due() const;
  // The probe's outcome: kind kAnswered with `code` (SIP status, 0 for a TCP connect), or an error
  // kind. Ignored if the probe is no longer in flight.
  void finish(std::uint64_t id, int kind, int code, std::int64_t now);
  // A SIP provisional (1xx) response: counted, and the probe keeps waiting.
  void provisional(std::uint64_t id);
  bool in_flight(std::uint64_t id) const { return slot_of(id) != nullptr; }
  // The check a probe belongs to (valid while in flight).
  const ServiceCheck* check(std::uint64_t id) const;
  std::size_t size() const { return by_id_.size(); }
  std::shared_ptr<const ServiceSeries> series(const std::string& key, const std::string& service) const;
  std::shared_ptr<ServiceExposition> exposition() const { return x_; }

 private:
  std::function<void()> drain_;
  struct Slot {
    ServiceCheck c;
    std::uint32_t probe = 0;
    bool busy = false;
    std::int64_t sent = 0;
    sockaddr_storage addr{};
    std::shared_ptr<ServiceSeries> m;
  };
  enum Ev : std::uint8_t { kDeadline = 1, kResend };  // and Scheduler::kStart: a probe
  Slot* slot_of(std::uint64_t id) const;
  void schedule(std::uint32_t idx, std::int64_t now);
  void begin(std::uint32_t idx, std::int64_t now);
  void remove(std::uint32_t idx);

  bool sip_;
  std::vector<std::string> kinds_;
  StartFn start_;
  IdFn stop_, resend_;
  std::int64_t t1_ = 0;
  CheckFn on_check_;
  std::shared_ptr<ServiceExposition> x_;
  std::vector<std::unique_ptr<Slot>> slots_;                            // null = free
  std::unordered_map<std::string, std::uint32_t> by_id_;                // key + '\n' + service
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_key_;  // device key -> slots
  Scheduler sched_;
};

// Converts a libuv error to an error kind name of the call-service probers.
const char* error_kind(int uv_err);

}  // namespace siteprobe::probes
