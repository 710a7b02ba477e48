// The conference calendar (inventory `conferences:`, docs/inventory.md#conferences): before each
// occurrence it runs the pre-flight — path tests to every participant's `stamp` devices at each
// pre-flight mark (T-60, T-15, T-5 min by default) — and from the first mark to the end it keeps a
// verdict per participant: ready, or not ready for the first failing reason (its site down, a path
// test that failed — "loss 31 % at 2 Mbit/s", "no reflector" —, an endpoint not ready), or pending
// (its path test has not come back yet).
//
// Times are unix seconds on an injected clock (tick(now)); each conference's zone is a fixed UTC
// offset. State (which marks fired for which occurrence) is kept by conference name across
// reloads, so a reload during a pre-flight neither repeats nor loses it.
// Threading: loop thread, except parts() and report(), which HTTP threads call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/readiness.h"
#include "inventory/config.h"
#include "metrics/series.h"
#include "probes/path_test.h"

namespace siteprobe {

class Conferences final : public Exposition {
 public:
  struct Occurrence {
    std::int64_t start = 0, end = 0;  // unix seconds
  };
  // The occurrence under way at `now`, else the next one; nullopt if there is none (dates all past).
  static std::optional<Occurrence> next(const Conference& c, std::int64_t now);
  // "2026-12-07 08:00 +07:00": unix time `t` in a zone `offset` seconds east of UTC.
  static std::string local_time(std::int64_t t, int offset);

  void set_request(probes::PathTestRequestFn fn) { request_ = std::move(fn); }
  void configure(std::shared_ptr<const Config> config);
  // Fires due pre-flight marks and re-decides every participant; `readiness` may be null (tests).
  void tick(std::int64_t now, const Readiness* readiness);
  void on_path_test(const std::string& key, const probes::PathTestSummary& p);
  Parts parts() const override;
  // The pre-flight table of one conference by district (text/plain); found = false if no such name.
  std::string report(const std::string& name, bool& found, bool& all_ready) const;
  // For tests: how many times pre-flight path tests were asked for, and the last verdicts.
  struct Verdict {
    std::string site, name, district;
    enum { Ready, NotReady, Pending } state = Pending;
    std::string reason, detail;  // reason: a short category; detail: the operator's words
  };
  std::vector<Verdict> verdicts(const std::string& conference) const;
  int preflights_fired() const { return fired_total_; }
  // The devices whose checks run faster now (participants of a pre-flight under way), with the
  // interval; the generation changes whenever the map does.
  const std::map<std::string, Duration>& boosted() const { return boosted_; }
  std::uint64_t boost_generation() const { return boost_gen_; }
  void render(std::string& out) const { Exposition::render(out); }

 private:
  struct State {
    std::int64_t occurrence = -1;  // start of the occurrence `fired` belongs to
    std::set<std::int64_t> fired;  // the marks (seconds before start) already fired
    std::int64_t since = 0;        // when its first mark fired: results from before do not count
    std::vector<Verdict> verdicts;
    Occurrence occ;
    bool active = false;  // between the first mark and the end
  };
  void render();

  probes::PathTestRequestFn request_;
  std::shared_ptr<const Config> config_;
  std::map<std::string, State> state_;                      // by conference name
  std::map<std::string, probes::PathTestSummary> results_;  // by device key
  int fired_total_ = 0;
  std::map<std::string, Duration> boosted_;
  std::uint64_t boost_gen_ = 0;
  void set_boosted(std::map<std::string, Duration> b) {
    if (b != boosted_) boosted_ = std::move(b), ++boost_gen_;
  }
  mutable std::mutex mu_;
  std::shared_ptr<const std::string> text_ = std::make_shared<const std::string>();
  std::map<std::string, std::string> reports_;  // mu_
};

}  // namespace siteprobe
