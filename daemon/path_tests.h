// The daemon's side of path tests (probes/stamp.h): who asks (POST /-/path-test, the conference
// calendar), what the last result of each device was (GET /path-tests), and who is told of each
// result. Threading: loop thread, except report(), which HTTP threads call.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "probes/path_test.h"

namespace siteprobe {

class PathTests {
 public:
  // The prober's request function (ProbeContext::request_path_tests).
  void set_prober(probes::PathTestRequestFn fn) { request_ = std::move(fn); }
  void configure(std::shared_ptr<const Config> config) { config_ = std::move(config); }
  // Devices by key ("site/device") and sites by id (their devices that have a `stamp` block);
  // a name that matches nothing gets a failed result at once, with why.
  void request(const std::vector<std::string>& devices, const std::vector<std::string>& sites,
               double bitrate_bps, const std::string& why);
  void on_result(const std::string& key, const probes::PathTestSummary& p);
  // Also told of every result (the conference calendar).
  void subscribe(probes::PathTestFn fn) { listeners_.push_back(std::move(fn)); }
  // The last result of each device tested, a line each (text/plain).
  std::string report() const;

 private:
  probes::PathTestRequestFn request_;
  std::shared_ptr<const Config> config_;
  std::vector<probes::PathTestFn> listeners_;
  mutable std::mutex mu_;
  std::map<std::string, probes::PathTestSummary> last_;  // mu_
};

}  // namespace siteprobe
