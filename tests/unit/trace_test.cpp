// Path diagnosis: the trace core (probes/trace.h) on an injected clock and a recording socket, and
// the daemon's trace scheduling and exposition (daemon/path_trace.h).
#include "probes/trace.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "daemon/path_trace.h"
#include "probes/icmp.h"
#include "probes/registry.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

constexpr std::int64_t kMs = 1000000;
constexpr std::uint64_t kCookie = 0xfeedface00000000ull;

sockaddr_storage v4(const char* a) {
  sockaddr_storage ss{};
  auto* s = reinterpret_cast<sockaddr_in*>(&ss);
  s->sin_family = AF_INET;
  inet_pton(AF_INET, a, &s->sin_addr);
  return ss;
}

struct Rig {
  struct Sent {
    sockaddr_storage to;
    std::vector<std::uint8_t> pkt;
    int ttl;
  };
  std::vector<Sent> sent;
  std::vector<TraceResult> results;
  PathTracer tracer{kCookie,
                    [this](const sockaddr_storage& to, const std::vector<std::uint8_t>& p, int ttl) {
                      sent.push_back({to, p, ttl});
                      return true;
                    },
                    [] { return std::int64_t{1'700'000'000'000'000'000}; }};
  Rig() { tracer.set_ident(false, 0x9999); }
  void start(const char* dst = "10.0.0.9", int hops = 4) {
    tracer.start("s/router", v4(dst), hops, 1000 * kMs, 0,
                 [this](const TraceResult& r) { results.push_back(r); });
  }
  const std::vector<std::uint8_t>& request(int ttl) {
    for (const auto& s : sent)
      if (s.ttl == ttl) return s.pkt;
    FAIL("no request with TTL " << ttl);
    return sent.front().pkt;
  }
  // An ICMP error of `type` quoting the request sent with `ttl` (its IP header toward `dst`, then
  // `quoted` bytes of the request: 8 is all RFC 792 asks of a router).
  std::vector<std::uint8_t> error(std::uint8_t type, int ttl, std::size_t quoted = 64,
                                  const char* dst = "10.0.0.9") {
    const auto& req = request(ttl);
    std::vector<std::uint8_t> p(8 + 20, 0);
    p[0] = type;
    p[8] = 0x45;
    p[8 + 9] = 1;  // ICMP
    const auto d = v4(dst);
    std::memcpy(&p[8 + 16], &reinterpret_cast<const sockaddr_in&>(d).sin_addr, 4);
    p.insert(p.end(), req.begin(), req.begin() + static_cast<std::ptrdiff_t>(std::min(quoted, req.size())));
    return p;
  }
  bool deliver(const std::vector<std::uint8_t>& p, const char* from) {
    return tracer.on_packet(false, p.data(), p.size(), v4(from), 0);
  }
};

}  // namespace

TEST_CASE("trace: packets per hop with rising TTL, one identifier of its own") {
  Rig r;
  r.start("10.0.0.9", 4);
  REQUIRE(r.sent.size() == static_cast<std::size_t>(4 * PathTracer::kPacketsPerHop));
  for (std::size_t i = 0; i < r.sent.size(); ++i) {
    CHECK(r.sent[i].ttl == static_cast<int>(i) / PathTracer::kPacketsPerHop + 1);
    const auto& p = r.sent[i].pkt;
    CHECK(p[0] == kV4EchoRequest);
    CHECK((p[4] << 8 | p[5]) == 0x9999);
  }
  CHECK(r.tracer.active());
  CHECK(r.tracer.next_due() == 1000 * kMs);
}

TEST_CASE("trace: the path ends after the last hop answering (silent beyond), with 8-byte quotes") {
  Rig r;
  r.start();
  CHECK(r.deliver(r.error(kV4TimeExceeded, 1, 8), "10.0.0.1"));  // the RFC 792 minimum
  CHECK(r.deliver(r.error(kV4TimeExceeded, 2), "10.0.0.2"));
  CHECK(r.deliver(r.error(kV4TimeExceeded, 2), "10.0.0.2"));  // the hop's second packet
  CHECK(r.results.empty());
  r.tracer.run(999 * kMs);
  CHECK(r.results.empty());
  r.tracer.run(1000 * kMs);
  REQUIRE(r.results.size() == 1);
  const TraceResult& t = r.results[0];
  CHECK(t.error.empty());
  CHECK(t.end == "silent");
  CHECK(t.last_hop == 2);
  CHECK(t.last_address == "10.0.0.2");
  CHECK(t.hops == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK_FALSE(r.tracer.active());
}

TEST_CASE("trace: the device's reply ends it at once; a silent hop before it is kept as a gap") {
  Rig r;
  r.start();
  r.deliver(r.error(kV4TimeExceeded, 1), "10.0.0.1");
  auto reply = r.request(3);
  reply[0] = kV4EchoReply;
  CHECK(r.deliver(reply, "10.0.0.9"));
  CHECK(r.results.empty());  // hop 2 has not answered: wait for it until the timeout
  r.deliver(r.error(kV4TimeExceeded, 2), "10.0.0.2");
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].end == "reached");
  CHECK(r.results[0].last_hop == 3);
  CHECK(r.results[0].hops == std::vector<std::string>{"10.0.0.1", "10.0.0.2", "10.0.0.9"});

  Rig gap;
  gap.start();
  auto rep = gap.request(3);
  rep[0] = kV4EchoReply;
  gap.deliver(rep, "10.0.0.9");
  gap.tracer.run(1000 * kMs);
  REQUIRE(gap.results.size() == 1);
  CHECK(gap.results[0].hops == std::vector<std::string>{"", "", "10.0.0.9"});
}

TEST_CASE("trace: an unreachable from a hop ends the path there") {
  Rig r;
  r.start();
  r.deliver(r.error(kV4TimeExceeded, 1), "10.0.0.1");
  r.deliver(r.error(kV4Unreach, 2), "10.0.0.2");
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].end == "unreachable");
  CHECK(r.results[0].last_hop == 2);
  CHECK(r.results[0].last_address == "10.0.0.2");
}

TEST_CASE("trace: forged and foreign answers are not taken") {
  Rig r;
  r.start();
  // An error quoting one of our requests, but toward another destination.
  CHECK(r.deliver(r.error(kV4TimeExceeded, 1, 64, "10.9.9.9"), "10.0.0.1"));
  // A reply with our identifier from another address.
  auto reply = r.request(2);
  reply[0] = kV4EchoReply;
  CHECK(r.deliver(reply, "10.0.0.66"));
  // A reply whose payload lacks the trace cookie: not a trace answer (the probes' engine gets it).
  auto forged = reply;
  forged[8] ^= 0xff;
  CHECK_FALSE(r.deliver(forged, "10.0.0.9"));
  // Another identifier (a probe's, another pinger's).
  auto other = r.error(kV4TimeExceeded, 1);
  other[8 + 20 + 4] ^= 0x01;
  CHECK_FALSE(r.deliver(other, "10.0.0.1"));
  // Every truncation of a real answer: never a crash, never a hop.
  const auto te = r.error(kV4TimeExceeded, 1);
  for (std::size_t n = 0; n < te.size(); ++n) r.tracer.on_packet(false, te.data(), n, v4("10.0.0.1"), 0);
  r.tracer.run(1000 * kMs);
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].last_hop == 1);  // the truncations included the 8-byte quote: hop 1 only
  CHECK(r.results[0].end == "silent");
}

TEST_CASE("trace: no address or no raw socket fails at once, with why") {
  Rig r;
  TraceResult got;
  r.tracer.start("s/r", sockaddr_storage{}, 4, kMs, 0, [&](const TraceResult& t) { got = t; });
  CHECK(got.error == "no address");
  PathTracer dgram{kCookie,
                   [](const sockaddr_storage&, const std::vector<std::uint8_t>&, int) { return true; },
                   [] { return std::int64_t{0}; }};
  dgram.start("s/r", v4("10.0.0.9"), 4, kMs, 0, [&](const TraceResult& t) { got = t; });
  CHECK(got.error.find("unsupported") == 0);
  CHECK_FALSE(dgram.active());
}

namespace {
std::shared_ptr<const Config> traced_inventory(int communes) {
  std::string text =
      "trace: {max_per_minute: 2, interval: 60s}\n"
      "sites:\n"
      "  - {id: p, name: P, level: province, expected_path: [10.0.0.1, '2001:db8::0001'],\n"
      "     devices: [{name: router, address: 127.0.0.1, role: router}]}\n"
      "  - {id: d, name: D, level: district, parent: p, devices: [{name: router, address: 127.0.0.2, role: "
      "router}]}\n";
  for (int i = 0; i < communes; ++i)
    text += "  - {id: c" + std::to_string(i) +
            ", name: C, level: commune, parent: d, devices: [{name: sw, address: "
            "127.0.1.1, role: switch}, {name: router, address: 127.0.1." +
            std::to_string(i + 2) + ", role: router}]}\n";
  auto r = probes::parse_inventory(text, "t.yml");
  REQUIRE(r.config);
  return r.config;
}
}  // namespace

TEST_CASE(
    "path traces: a down site traced at once, its router, under a global rate; periodic with an expected "
    "path") {
  auto cfg = traced_inventory(4);
  CHECK(cfg->sites[0].expected_path == std::vector<std::string>{"10.0.0.1", "2001:db8::1"});  // one spelling
  PathTraces pt;
  std::vector<std::string> asked;
  std::vector<TraceDoneFn> pending;
  pt.set_tracer([&](const std::string& key, int, Duration, TraceDoneFn done) {
    asked.push_back(key);
    pending.push_back(std::move(done));
  });
  const std::int64_t t0 = 1'800'000'000;
  pt.configure(cfg, t0);
  pt.on_site_down("c0", t0);
  pt.on_site_down("c1", t0);
  pt.on_site_down("c2", t0);  // over the 2 a minute: waits
  pt.on_site_down("c2", t0);  // once
  CHECK(asked == std::vector<std::string>{"c0/router", "c1/router"});
  pt.tick(t0 + 29);
  CHECK(asked.size() == 2);
  pt.tick(t0 + 30);  // one token every 30 s
  CHECK(asked.back() == "c2/router");

  TraceResult res;
  res.key = "c0/router";
  res.end = "silent";
  res.last_hop = 2;
  res.last_address = "10.0.0.2";
  res.hops = {"10.0.0.1", "10.0.0.2"};
  pending[0](res);
  CHECK(pt.note("c0") == "path ends after 10.0.0.2, hop 2");
  CHECK(pt.note("c1").empty());
  std::string text;
  pt.exposition()->render(text);
  CHECK(text.find("siteprobe_path_last_hop_info{address=\"10.0.0.2\",commune=\"c0\"") == std::string::npos);
  CHECK(text.find("hop=\"2\"") != std::string::npos);
  CHECK(text.find("siteprobe_path_hops{") != std::string::npos);
  CHECK(text.find("siteprobe_path_traces_total{result=\"silent\"} 1") != std::string::npos);
  CHECK(text.find("siteprobe_path_traces_total{result=\"rate_limited\"} 1") != std::string::npos);
  CHECK(text.find("siteprobe_path_changed") == std::string::npos);  // no expected path traced yet

  // p has an expected path: traced within its (splayed) interval, when a token is free.
  asked.clear();
  for (std::int64_t t = t0 + 31; t <= t0 + 200 && asked.empty(); ++t) pt.tick(t);
  REQUIRE(asked == std::vector<std::string>{"p/router"});
  res.key = "p/router";
  res.end = "reached";
  res.hops = {"10.0.0.1", "2001:db8::1", "127.0.0.1"};
  res.last_hop = 3;
  res.last_address = "127.0.0.1";
  pending.back()(res);
  text.clear();
  pt.exposition()->render(text);
  CHECK(text.find("siteprobe_path_changed{district=\"\",level=\"province\",province=\"p\",site=\"p\"} 0\n") !=
        std::string::npos);
  CHECK(pt.note("p") == "path reaches the router, hop 3");
}

TEST_CASE("path traces: a site that turns unreachable (its parent went down) keeps no trace of its own") {
  auto cfg = traced_inventory(2);
  PathTraces pt;
  std::vector<TraceDoneFn> pending;
  pt.set_tracer(
      [&](const std::string&, int, Duration, TraceDoneFn done) { pending.push_back(std::move(done)); });
  const std::int64_t t0 = 1'800'000'000;
  pt.configure(cfg, t0);
  TraceResult res;
  res.end = "silent";
  res.last_hop = 1;
  res.last_address = "10.0.0.1";
  res.hops = {"10.0.0.1"};
  // c0 read down a round before its district: its trace runs, then the district goes down.
  pt.on_site_down("c0", t0);
  REQUIRE(pending.size() == 1);
  pt.on_site_unreachable("c0");
  res.key = "c0/router";
  pending[0](res);
  CHECK(pt.note("c0").empty());
  // c1 traced before, now unreachable: its old result goes too.
  pt.on_site_down("c1", t0);
  REQUIRE(pending.size() == 2);
  res.key = "c1/router";
  pending[1](res);
  CHECK(pt.note("c1") == "path ends after 10.0.0.1, hop 1");
  pt.on_site_unreachable("c1");
  CHECK(pt.note("c1").empty());
  std::string text;
  pt.exposition()->render(text);
  CHECK(text.find("siteprobe_path_last_hop_info{") == std::string::npos);
  // Down again later (the district back, the commune's own link cut): traced as before.
  pt.on_site_down("c0", t0 + 60);
  CHECK(pending.size() == 3);
}
