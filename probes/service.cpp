#include "probes/service.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "metrics/families.h"

namespace siteprobe::probes {

const std::vector<double>& service_buckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

namespace {
void set_port(sockaddr_storage& a, int port) {
  const auto p = htons(static_cast<std::uint16_t>(port));
  if (a.ss_family == AF_INET) reinterpret_cast<sockaddr_in&>(a).sin_port = p;
  if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(a).sin6_port = p;
}
}  // namespace

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

void ServiceExposition::render(std::string& out) const {
  const auto all = series.snapshot();
  const std::string p = sip_ ? "siteprobe_sip" : "siteprobe_tcp";
  const auto each = [&](const std::string& name, auto&& value) {
    append_header(out, name);
    for (const auto& s : all) {
      out += name;
      out += '{';
      out += s->labels;
      out += "} ";
      append_value(out, value(*s));
      out += '\n';
    }
  };
  if (sip_) {
    each(p + "_up", [](const ServiceSeries& s) { return s.up.get(); });
    each(p + "_response_code", [](const ServiceSeries& s) { return s.code.get(); });
    each(p + "_requests_total", [](const ServiceSeries& s) { return s.probes.get(); });
    append_header(out, "siteprobe_sip_responses_total");
    for (const auto& s : all)
      for (int c = 0; c < 6; ++c) {
        out += "siteprobe_sip_responses_total{" + s->labels + ",class=\"" + std::to_string(c + 1) + "xx\"} ";
        append_value(out, s->classes[c].get());
        out += '\n';
      }
  } else {
    each(p + "_up", [](const ServiceSeries& s) { return s.up.get(); });
    each(p + "_connects_total", [](const ServiceSeries& s) { return s.probes.get(); });
  }
  const std::string errors = p + "_errors_total";
  append_header(out, errors);
  for (const auto& s : all)
    for (std::size_t k = 0; k < kinds_.size(); ++k) {
      out += errors + "{" + s->labels + ",kind=\"" + kinds_[k] + "\"} ";
      append_value(out, s->errors[k].get());
      out += '\n';
    }
  const std::string h = sip_ ? "siteprobe_sip_rtt_seconds" : "siteprobe_tcp_connect_seconds";
  append_header(out, h);
  for (const auto& s : all) {
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i <= s->rtt.bounds.size(); ++i) {
      cum += s->rtt.buckets[i].get();
      out +=
          h + "_bucket{" + s->labels + "," + (i < s->rtt.bounds.size() ? s->rtt.le[i] : "le=\"+Inf\"") + "} ";
      append_value(out, cum);
      out += '\n';
    }
    out += h + "_sum{" + s->labels + "} ";
    append_value(out, s->rtt.sum.get());
    out += "\n" + h + "_count{" + s->labels + "} ";
    append_value(out, cum);
    out += '\n';
  }
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
      set_port(s.addr, c.port);
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
    set_port(s.addr, s.c.port);
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
