#include "daemon/path_tests.h"

#include <cstdio>
#include <ctime>

namespace siteprobe {
namespace {

const Site* find_site(const Config* c, const std::string& id) {
  if (c)
    for (const auto& s : c->sites)
      if (s.id == id) return &s;
  return nullptr;
}

}  // namespace

void PathTests::request(const std::vector<std::string>& devices, const std::vector<std::string>& sites,
                        double bitrate_bps, const std::string& why) {
  std::vector<std::string> keys;
  const auto fail = [&](const std::string& key, const std::string& reason) {
    probes::PathTestSummary p;
    p.reason = reason;
    on_result(key, p);
  };
  for (const auto& d : devices) {
    const auto slash = d.find('/');
    const Site* s = slash != std::string::npos ? find_site(config_.get(), d.substr(0, slash)) : nullptr;
    const Device* dev = nullptr;
    if (s)
      for (const auto& x : s->devices)
        if (x.name == d.substr(slash + 1)) dev = &x;
    if (!dev)
      fail(d, "no such device in the inventory");
    else if (!dev->blocks.count("stamp"))
      fail(d, "no path test configured (no stamp block)");
    else
      keys.push_back(d);
  }
  for (const auto& id : sites) {
    const Site* s = find_site(config_.get(), id);
    if (!s) {
      fail(id, "no such site in the inventory");
      continue;
    }
    bool any = false;
    for (const auto& x : s->devices)
      if (x.blocks.count("stamp")) keys.push_back(s->id + "/" + x.name), any = true;
    if (!any) fail(id, "no device of this site has a path test (stamp block)");
  }
  if (!keys.empty() && request_) request_(keys, why, bitrate_bps);
}

void PathTests::on_result(const std::string& key, const probes::PathTestSummary& p) {
  {
    std::lock_guard<std::mutex> g(mu_);
    last_[key] = p;
  }
  for (const auto& l : listeners_) l(key, p);
}

std::string PathTests::report() const {
  std::lock_guard<std::mutex> g(mu_);
  std::string out =
      "# Last path test of each device (STAMP): device, when (UTC), result, loss, RTT median, "
      "IPDV, MOS, DSCP, reason\n";
  for (const auto& [key, p] : last_) {
    char line[512];
    char when[32] = "-";
    const auto t = static_cast<std::time_t>(p.finished_unix);
    if (t > 0) {
      std::tm tm{};
      gmtime_r(&t, &tm);
      std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    std::snprintf(line, sizeof line,
                  "%s  %s  %s  loss %.1f %%  rtt %.1f ms  ipdv %.2f ms  MOS %.2f  dscp %s  %s\n", key.c_str(),
                  when, probes::verdict_name(p.verdict), p.loss_ratio * 100, p.rtt_median_seconds * 1000,
                  p.ipdv_seconds * 1000, p.mos, p.dscp.empty() ? "-" : p.dscp.c_str(), p.reason.c_str());
    out += line;
  }
  if (last_.empty()) out += "(none yet: POST /-/path-test?device=SITE/DEVICE, or a conference pre-flight)\n";
  return out;
}

}  // namespace siteprobe
