#include "daemon/peers.h"

#include "daemon/http_client.h"
#include "daemon/log.h"
#include "metrics/families.h"

namespace siteprobe {

struct Peers::Job {
  uv_work_t req{};
  Peers* self = nullptr;
  std::shared_ptr<bool> alive;
  std::size_t i = 0;
  std::string url;
  int status = 0;
  std::string err;
};

Peers::Peers(uv_loop_t* loop, prometheus::Registry& registry, std::vector<std::string> urls) : loop_(loop) {
  if (urls.empty()) return;
  auto& family =
      prometheus::BuildGauge().Name("siteprobe_peer_up").Help(help("siteprobe_peer_up")).Register(registry);
  for (auto& u : urls) {
    Peer p;
    p.url = std::move(u);
    p.up = &family.Add({{"peer", p.url}});
    peers_.push_back(std::move(p));
  }
  uv_must(timer_.init([loop](uv_timer_t* t) { return uv_timer_init(loop, t); }), "uv_timer_init");
  timer_.get()->data = this;
  uv_must(
      uv_timer_start(
          timer_.get(), [](uv_timer_t* t) noexcept { static_cast<Peers*>(t->data)->check_all(); }, 0, 5000),
      "uv_timer_start");
}

void Peers::close() {
  *alive_ = false;
  timer_.reset();
}

void Peers::check_all() {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i].busy) continue;
    auto job = std::make_unique<Job>();
    job->self = this;
    job->alive = alive_;
    job->i = i;
    job->url = peers_[i].url;
    job->req.data = job.get();
    const int rc = uv_queue_work(
        loop_, &job->req,
        [](uv_work_t* r) noexcept {
          auto* j = static_cast<Job*>(r->data);
          HttpGet g;
          g.url = j->url;
          g.timeout_s = 5;
          std::string body;
          j->status = http_get(g, "/-/healthy", body, j->err);
        },
        [](uv_work_t* r, int) {
          std::unique_ptr<Job> j(static_cast<Job*>(r->data));
          if (!*j->alive) return;
          Peer& p = j->self->peers_[j->i];
          p.busy = false;
          const bool up = j->status == 200;
          if (static_cast<int>(up) != p.state)
            log(up ? LogLevel::Info : LogLevel::Warn, up ? "peer up" : "peer down",
                {{"peer", p.url},
                 {"error", up ? "" : (j->err.empty() ? "HTTP " + std::to_string(j->status) : j->err)}});
          p.state = up;
          p.up->Set(up ? 1 : 0);
        });
    if (rc != 0) continue;  // the job is freed here
    (void)job.release();    // the after-work callback frees it
    peers_[i].busy = true;
  }
}

}  // namespace siteprobe
