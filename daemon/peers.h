// Peer vantages (--peer URL, docs/scale-out.md): every 5 s each peer's /-/healthy is fetched in
// libuv's thread pool (the blocking HTTP(S) client of `siteprobe readiness`, 5 s timeout), and
// siteprobe_peer_up{peer} says whether it answered 200. One check per peer at a time.
// Threading: loop thread; the fetch runs in the pool and touches only its job.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "util/uv_handle.h"

namespace siteprobe {

class Peers {
 public:
  Peers(uv_loop_t* loop, prometheus::Registry& registry, std::vector<std::string> urls);
  void close();  // stops the timer; a check in flight ends on its own (its result is dropped)

 private:
  struct Job;
  void check_all();

  uv_loop_t* loop_;
  struct Peer {
    std::string url;
    prometheus::Gauge* up = nullptr;
    bool busy = false;
    int state = -1;  // as last logged: -1 not checked yet, 0 down, 1 up
  };
  std::vector<Peer> peers_;
  UvHandle<uv_timer_t> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace siteprobe
