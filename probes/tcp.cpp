#include "probes/tcp.h"

#include <unordered_map>

#include "probes/registry.h"
#include "probes/service.h"

namespace siteprobe::probes {
namespace {

const std::vector<std::string> kKinds = {"timeout", "refused", "unreachable", "other"};

class TcpProber;

// One connect attempt, freed in its close callback; a connect callback that arrives after close()
// (UV_ECANCELED) does nothing.
struct Attempt {
  uv_tcp_t tcp{};
  uv_connect_t req{};
  TcpProber* owner = nullptr;
  std::uint64_t id = 0;
  bool closing = false;
  void close() {
    if (closing) return;
    closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) noexcept {
      // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): libuv's (through tcp.data) until this C callback
      delete static_cast<Attempt*>(h->data);
    });
  }
};

class TcpProber final : public Prober {
 public:
  explicit TcpProber(uv_loop_t* loop)
      : loop_(loop),
        engine_(
            false, kKinds,
            [this](std::uint64_t id, const ServiceCheck&, const sockaddr_storage& to) { start(id, to); },
            [this](std::uint64_t id) { stop(id); }),
        timer_(loop, engine_) {}
  ~TcpProber() override { close(); }

  void on_check(CheckFn fn) { engine_.on_check(std::move(fn)); }
  std::shared_ptr<const Exposition> exposition() const override { return engine_.exposition(); }
  void set_targets(const Config&, const std::vector<Target>& targets) override {
    std::vector<ServiceCheck> checks;
    const auto add = [&](const Target& t, const std::string& service, int port, Duration iv, Duration to,
                         bool call_service = false) {
      auto l = label_map(t);
      l["service"] = service;
      l["port"] = std::to_string(port);
      checks.push_back({t.key, service, l, port, iv, to, true, call_service});
    };
    for (const auto& t : targets) {
      const Device& d = *t.device;
      if (const auto h = d.blocks.find("h323"); h != d.blocks.end())
        add(t, "h323", static_cast<int>(h->second.integer("port")),
            capped_interval(h->second.duration("interval"), h->second.duration("timeout"), t.max_interval),
            h->second.duration("timeout"), true);
      for (const auto& c : d.tcp) add(t, c.name, c.port, c.interval, c.timeout);
    }
    engine_.set_checks(checks, static_cast<std::int64_t>(uv_hrtime()));
    timer_.arm();
  }
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    engine_.set_address(key, addr);
  }
  void close() override {
    for (auto& [id, a] : attempts_) a->close();
    attempts_.clear();
    timer_.close();
  }

 private:
  void start(std::uint64_t id, const sockaddr_storage& to) {
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): attempts_ and libuv hold it until close()
    auto* a = new Attempt;
    a->owner = this;
    a->id = id;
    a->tcp.data = a;
    a->req.data = a;
    if (const int rc = uv_tcp_init(loop_, &a->tcp)) {  // not registered with the loop: free it now
      delete a;                                        // NOLINT(cppcoreguidelines-owning-memory)
      done(id, rc);
      return;
    }
    attempts_[id] = a;
    const int rc = uv_tcp_connect(&a->req, &a->tcp, reinterpret_cast<const sockaddr*>(&to),
                                  [](uv_connect_t* r, int status) noexcept {
                                    auto* at = static_cast<Attempt*>(r->data);
                                    if (!at->closing) at->owner->done(at->id, status);
                                  });
    if (rc != 0) done(id, rc);
  }
  void stop(std::uint64_t id) {
    auto it = attempts_.find(id);
    if (it == attempts_.end()) return;
    it->second->close();
    attempts_.erase(it);
  }
  void done(std::uint64_t id, int status) {
    stop(id);
    int kind = ServiceEngine::kAnswered;
    if (status < 0) {
      const std::string k = error_kind(status);
      kind = k == "refused" ? 1 : k == "unreachable" ? 2 : 3;
    }
    engine_.finish(id, kind, 0, static_cast<std::int64_t>(uv_hrtime()));
    timer_.arm();
  }

  uv_loop_t* loop_;
  ServiceEngine engine_;
  EngineTimer<ServiceEngine> timer_;
  std::unordered_map<std::uint64_t, Attempt*> attempts_;
};

}  // namespace

std::unique_ptr<Prober> make_tcp_prober(ProbeContext& ctx) {
  auto p = std::make_unique<TcpProber>(ctx.loop);
  p->on_check(ctx.on_check);
  return p;
}

}  // namespace siteprobe::probes
