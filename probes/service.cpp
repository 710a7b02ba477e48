#include "probes/service.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "metrics/families.h"
#include "util/net.h"

namespace siteprobe::probes {

const std::vector<double>& service_buckets() {
  // Up to the 2 s default timeout; each bound is a series per check (issue #12).
  static const std::vector<double> b = {0.01, 0.05, 0.1, 0.25, 1};
  return b;
}

const char* error_kind(int e) {
  switch (e) {
    case UV_ECONNREFUSED:
      return "refused";
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_EHOSTDOWN:
      return "unreachable";
    case UV_ECONNRESET:
    case UV_EOF:
    case UV_EPIPE:
      return "closed";
    default:
      return "other";
  }
}

Exposition::Parts ServiceExposition::parts() const {
  using S = std::shared_ptr<const ServiceSeries>;
  const std::string p = sip_ ? "siteprobe_sip" : "siteprobe_tcp";
  const auto each = [](const std::string& name, auto value) {
    return SeriesFamily<S>{header(name), [name, value](std::string& out, const S& s) {
                             append_line(out, name, s->labels, value(*s));
                           }};
  };
  // TCP has no siteprobe_tcp_connects_total: it is _connect_seconds_count plus the errors (issue #12).
  std::vector<SeriesFamily<S>> f;
  f.push_back(each(p + "_up", [](const ServiceSeries& s) { return s.up.get(); }));
  if (sip_) {
    f.push_back(each(p + "_response_code", [](const ServiceSeries& s) { return s.code.get(); }));
    f.push_back(each(p + "_requests_total", [](const ServiceSeries& s) { return s.probes.get(); }));
    // Classes and error kinds only once non-zero: six always-zero classes and six kinds were most of
    // an endpoint's series (issue #12); rules and dashboards read a missing one as 0.
    f.push_back({header("siteprobe_sip_responses_total"), [](std::string& out, const S& s) {
                   for (int c = 0; c < 6; ++c)
                     if (s->classes[c].get() != 0)
                       append_line(out, "siteprobe_sip_responses_total",
                                   s->labels + ",class=\"" + std::to_string(c + 1) + "xx\"",
                                   s->classes[c].get());
                 }});
  }
  const std::string errors = p + "_errors_total";
  f.push_back({header(errors), [errors, kinds = kinds_](std::string& out, const S& s) {
                 for (std::size_t k = 0; k < kinds.size(); ++k)
                   if (s->errors[k].get() != 0)
                     append_line(out, errors, s->labels + ",kind=\"" + kinds[k] + "\"", s->errors[k].get());
               }});
  const std::string h = sip_ ? "siteprobe_sip_rtt_seconds" : "siteprobe_tcp_connect_seconds";
  f.push_back({header(h), [h](std::string& out, const S& s) {
                 std::uint64_t cum = 0;
                 for (std::size_t i = 0; i <= s->rtt.bounds.size(); ++i) {
                   cum += s->rtt.buckets[i].get();
                   append_line(out, h + "_bucket",
                               s->labels + "," + (i < s->rtt.bounds.size() ? s->rtt.le[i] : "le=\"+Inf\""),
                               cum);
                 }
                 append_line(out, h + "_sum", s->labels, s->rtt.sum.get());
                 append_line(out, h + "_count", s->labels, cum);
               }});
  return family_parts(series.snapshot(), std::move(f));
}

ServiceEngine::ServiceEngine(bool sip, std::vector<std::string> kinds, StartFn start, IdFn stop)
    : sip_(sip),
      kinds_(std::move(kinds)),
      start_(std::move(start)),
      stop_(std::move(stop)),
      x_(std::make_shared<ServiceExposition>(sip, kinds_)) {}

ServiceEngine::~ServiceEngine() {
  stop_ = nullptr;  // the prober's members may already be gone
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i]) remove(i);
}

ServiceEngine::Slot* ServiceEngine::slot_of(std::uint64_t id) const {
  const auto idx = static_cast<std::uint32_t>(id >> 32);
  if (idx >= slots_.size() || !slots_[idx]) return nullptr;
  Slot* s = slots_[idx].get();
  return s->busy && s->probe == static_cast<std::uint32_t>(id) ? s : nullptr;
}

const ServiceCheck* ServiceEngine::check(std::uint64_t id) const {
  const Slot* s = slot_of(id);
  return s ? &s->c : nullptr;
}

void ServiceEngine::remove(std::uint32_t idx) {
  Slot& s = *slots_[idx];
  if (s.busy && stop_) stop_(static_cast<std::uint64_t>(idx) << 32 | s.probe);
  x_->series.remove(s.m);
  sched_.remove(slots_, idx);
}

void ServiceEngine::schedule(std::uint32_t idx, std::int64_t now) {
  const ServiceCheck& c = slots_[idx]->c;
  sched_.schedule(idx, c.key + "/" + c.service, c.interval.count(), now);
}

void ServiceEngine::set_checks(const std::vector<ServiceCheck>& checks, std::int64_t now) {
  std::unordered_map<std::string, const ServiceCheck*> wanted;
  for (const auto& c : checks) wanted[c.key + '\n' + c.service] = &c;
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    auto w = wanted.find(it->first);
    const Slot& s = *slots_[it->second];
    if (w == wanted.end() || w->second->labels != s.c.labels) {
      remove(it->second);
      it = by_id_.erase(it);
    } else {
      ++it;
    }
  }
  by_key_.clear();
  for (const auto& c : checks) {
    const std::string id = c.key + '\n' + c.service;
    auto found = by_id_.find(id);
    std::uint32_t idx;
    if (found != by_id_.end()) {
      idx = found->second;
      Slot& s = *slots_[idx];
      const bool reschedule = s.c.interval != c.interval;
      const sockaddr_storage addr = s.addr;
      s.c = c;
      s.addr = addr;
      net::set_port(s.addr, c.port);
      if (reschedule) schedule(idx, now);
    } else {
      idx = sched_.add(slots_);
      Slot& s = *slots_[idx];
      s.c = c;
      s.m = std::make_shared<ServiceSeries>(c.labels, kinds_.size(), service_buckets());
      x_->series.add(s.m);
      by_id_[id] = idx;
      schedule(idx, now);
    }
    by_key_[c.key].push_back(idx);
  }
}

void ServiceEngine::set_address(const std::string& key, const sockaddr_storage& addr) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  for (std::uint32_t idx : it->second) {
    Slot& s = *slots_[idx];
    s.addr = addr;
    net::set_port(s.addr, s.c.port);
  }
}

std::optional<std::int64_t> ServiceEngine::next_due() const {
  return sched_.next_due();
}

void ServiceEngine::run(std::int64_t now) {
  if (const auto due = sched_.next_due(); drain_ && due && now - *due > kLateNs)
    drain_();  // late: see IcmpEngine::run
  while (const auto e = sched_.pop(now)) {
    Slot& s = *slots_[e->slot];
    const std::uint64_t id = static_cast<std::uint64_t>(e->slot) << 32 | s.probe;
    if (e->kind == Scheduler::kStart) {
      begin(e->slot, now);
      continue;
    }
    if (!s.busy || s.probe != e->arg) continue;  // an earlier probe's deadline or resend
    if (e->kind == kDeadline) {
      if (stop_) stop_(id);
      finish(id, kTimeout, 0, now);
    } else if (resend_) {
      resend_(id);
      const std::int64_t next = e->when + (e->when - s.sent + t1_);  // t1, 3·t1, 7·t1: doubling gaps
      if (next < s.sent + s.c.timeout.count()) sched_.at(next, e->slot, kResend, s.probe);
    }
  }
}

void ServiceEngine::begin(std::uint32_t idx, std::int64_t now) {
  Slot& s = *slots_[idx];
  if (s.busy) {  // cannot happen with timeout <= interval, but never run two probes of one check
    const std::uint64_t old = static_cast<std::uint64_t>(idx) << 32 | s.probe;
    if (stop_) stop_(old);
    finish(old, kTimeout, 0, now);
  }
  s.busy = true;
  s.probe++;
  s.sent = now;
  s.m->probes.inc();
  const std::uint64_t id = static_cast<std::uint64_t>(idx) << 32 | s.probe;
  sched_.at(now + s.c.timeout.count(), idx, kDeadline, s.probe);
  if (t1_ > 0 && !s.c.tcp && t1_ < s.c.timeout.count()) sched_.at(now + t1_, idx, kResend, s.probe);
  if (s.addr.ss_family == AF_UNSPEC) {                        // DNS name not resolved (yet)
    finish(id, static_cast<int>(kinds_.size()) - 1, 0, now);  // the last kind is "other"
    return;
  }
  start_(id, s.c, s.addr);
}

void ServiceEngine::provisional(std::uint64_t id) {
  if (Slot* s = slot_of(id)) s->m->classes[0].inc();
}

void ServiceEngine::finish(std::uint64_t id, int kind, int code, std::int64_t now) {
  Slot* s = slot_of(id);
  if (!s) return;
  s->busy = false;
  CheckResult r{s->c.service, false, "", s->c.call_service};
  if (kind == kAnswered) {
    s->m->rtt.observe(static_cast<double>(now - s->sent) / 1e9);
    if (sip_) {
      if (code >= 100 && code <= 699) s->m->classes[code / 100 - 1].inc();
      r.up = code >= 200 && code <= 299;
      r.detail = std::to_string(code);
      s->m->code.set(code);
    } else {
      r.up = true;
      r.detail = "connected";
    }
  } else {
    const auto k = static_cast<std::size_t>(std::clamp(kind, 0, static_cast<int>(kinds_.size()) - 1));
    s->m->errors[k].inc();
    r.detail = kinds_[k];
    if (sip_) s->m->code.set(0);
  }
  s->m->up.set(r.up ? 1 : 0);
  if (on_check_) on_check_(s->c.key, r);
}

std::shared_ptr<const ServiceSeries> ServiceEngine::series(const std::string& key,
                                                           const std::string& service) const {
  auto it = by_id_.find(key + '\n' + service);
  return it == by_id_.end() ? nullptr : slots_[it->second]->m;
}

}  // namespace siteprobe::probes
