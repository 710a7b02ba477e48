#include "probes/icmp.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>

#include "probes/registry.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

constexpr std::int64_t kMs = 1000000;

sockaddr_storage v4(const char* a) {
  sockaddr_storage ss{};
  auto* s = reinterpret_cast<sockaddr_in*>(&ss);
  s->sin_family = AF_INET;
  inet_pton(AF_INET, a, &s->sin_addr);
  return ss;
}

// An engine over a fake clock and a fake socket that records what it sends.
struct Rig {
  prometheus::Registry reg;
  IcmpFamilies fam{reg};
  IcmpExposition expo;
  std::int64_t realtime = 1'700'000'000'000'000'000;
  std::vector<std::pair<sockaddr_storage, std::vector<std::uint8_t>>> sent;
  bool send_ok = true;
  std::vector<std::size_t> batches;        // the size of each batch sent
  std::function<bool(std::size_t)> ok_at;  // if set: whether the i-th packet sent goes out
  IcmpEngine engine{fam, expo, 0x1122334455667788ull,
                    [this](IcmpEngine::OutPacket* batch, std::size_t n) {
                      batches.push_back(n);
                      for (std::size_t i = 0; i < n; ++i) {
                        batch[i].ok = ok_at ? ok_at(sent.size()) : send_ok;
                        sent.emplace_back(batch[i].to, batch[i].bytes);
                      }
                    },
                    [this] { return realtime; }};
  std::shared_ptr<const Config> cfg;
  std::vector<Target> targets;

  explicit Rig(const std::string& icmp = "{interval: 1s, timeout: 500ms, packets: 3, spacing: 100ms}",
               int n = 1) {
    std::string text = "sites:\n  - id: s\n    name: S\n    level: province\n    devices:\n";
    for (int i = 0; i < n; ++i)
      text += "      - {name: d" + std::to_string(i) + ", address: 127.0.0." + std::to_string(i + 1) +
              ", role: router, icmp: " + icmp + "}\n";
    auto r = probes::parse_inventory(text, "t.yml");
    REQUIRE(r.config);
    cfg = r.config;
    for (const auto& d : cfg->sites[0].devices)
      targets.push_back(
          {"s/" + d.name,
           std::make_shared<const DeviceLabels>(prometheus::Labels{{"site", "s"}, {"device", d.name}}), cfg,
           &d});
    engine.set_ident(false, 0x4242);
    engine.set_targets(targets, 0);
    for (int i = 0; i < n; ++i)
      engine.set_address("s/d" + std::to_string(i), v4(("127.0.0." + std::to_string(i + 1)).c_str()));
  }
  std::shared_ptr<const IcmpSeries> m(int i = 0) {
    auto s = engine.series("s/d" + std::to_string(i));
    REQUIRE(s);
    return s;
  }
  // Turns a request we sent into the reply the target would send.
  static std::vector<std::uint8_t> reply_to(std::vector<std::uint8_t> p) {
    p[0] = 0;
    return p;
  }
  void deliver(const std::vector<std::uint8_t>& p, const char* from, std::int64_t now, std::int64_t rtt_ns) {
    EchoFields f;
    const auto parsed = parse_icmp(false, p.data(), p.size());
    f = parsed.fields;
    engine.on_packet(false, p.data(), p.size(), v4(from), f.send_ns + rtt_ns, now);
  }
};

}  // namespace

TEST_CASE("echo requests round-trip through build and parse") {
  EchoFields f{0xbeef, 513, 0xdeadbeefcafef00dull, 7, 9, 123456789};
  auto p = build_echo(false, f, 56);
  REQUIRE(p.size() == 64);
  CHECK(p[0] == 8);
  // The IPv4 checksum over the whole message folds to zero.
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < p.size(); i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  CHECK(sum == 0xffff);
  p[0] = 0;  // as a reply
  auto r = parse_icmp(false, p.data(), p.size());
  CHECK(r.kind == IcmpKind::EchoReply);
  REQUIRE(r.has_fields);
  CHECK(r.fields.ident == 0xbeef);
  CHECK(r.fields.seq == 513);
  CHECK(r.fields.cookie == 0xdeadbeefcafef00dull);
  CHECK(r.fields.slot == 7);
  CHECK(r.fields.generation == 9);
  CHECK(r.fields.send_ns == 123456789);
  // Payload smaller than our fields is padded up to them.
  CHECK(build_echo(true, f, 4).size() == kIcmpHeader + kPayloadMin);
  CHECK(build_echo(true, f, 4)[0] == 128);
}

TEST_CASE("truncated and foreign packets are classified, never misread") {
  EchoFields f{1, 2, 3, 4, 5, 6};
  auto p = build_echo(false, f, 56);
  p[0] = 0;
  CHECK(parse_icmp(false, p.data(), 4).kind == IcmpKind::Truncated);
  CHECK(parse_icmp(false, p.data(), 20).kind == IcmpKind::Truncated);
  p[0] = 5;  // redirect
  CHECK(parse_icmp(false, p.data(), p.size()).kind == IcmpKind::Other);
  std::uint8_t ip[20] = {0x45};
  CHECK(ipv4_header_len(ip, sizeof ip) == 20);
  ip[0] = 0x4f;
  CHECK(ipv4_header_len(ip, sizeof ip) == 0);  // IHL says 60 bytes, only 20 there
  ip[0] = 0x65;
  CHECK(ipv4_header_len(ip, sizeof ip) == 0);  // not IPv4
}

TEST_CASE("a full round: replies matched, loss and jitter from the round") {
  Rig rig;  // 3 packets, 100 ms apart, 500 ms timeout
  auto due = rig.engine.next_due();
  REQUIRE(due);
  CHECK(*due >= 0);
  CHECK(*due < 1000 * kMs);  // splayed within the first interval
  const std::int64_t t0 = *due;
  rig.engine.run(t0);
  REQUIRE(rig.sent.size() == 1);
  rig.engine.run(t0 + 100 * kMs);
  rig.engine.run(t0 + 200 * kMs);
  REQUIRE(rig.sent.size() == 3);
  CHECK(rig.engine.in_flight() == 3);
  CHECK(rig.fam.in_flight_icmp.Value() == 3);  // the gauge, set once per run()
  CHECK(rig.m()->sent.get() == 3);
  // Replies to packets 0 and 2 with RTTs 10 ms and 14 ms; packet 1 is lost.
  rig.deliver(Rig::reply_to(rig.sent[0].second), "127.0.0.1", t0 + 210 * kMs, 10 * kMs);
  rig.deliver(Rig::reply_to(rig.sent[2].second), "127.0.0.1", t0 + 220 * kMs, 14 * kMs);
  CHECK(rig.m()->received.get() == 2);
  CHECK(rig.engine.in_flight() == 1);
  CHECK(rig.fam.in_flight_icmp.Value() == 3);  // replies move it at publish(): after a read batch
  rig.engine.publish();
  CHECK(rig.fam.in_flight_icmp.Value() == 1);
  rig.engine.run(t0 + 600 * kMs);  // packet 1 times out (packets 0 and 2 answered: skipped)
  CHECK(rig.engine.in_flight() == 0);
  CHECK(rig.fam.in_flight_icmp.Value() == 0);
  CHECK(rig.m()->loss.get() == Approx(1.0 / 3));
  CHECK(rig.m()->jitter.get() == Approx(0.004));
  CHECK(rig.m()->rtt_mean.get() == Approx(0.012));
  CHECK(rig.m()->up.get() == 1);
  // The next round starts one interval after this one (stale deadlines in the queue do nothing).
  std::int64_t now = t0;
  while (rig.sent.size() == 3) {
    now = *rig.engine.next_due();
    rig.engine.run(now);
  }
  CHECK(now == t0 + 1000 * kMs);
}

TEST_CASE("after a stall longer than an interval, rounds come back on their grid") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1}");
  const std::int64_t t0 = 933'996'341;  // splay_offset_ns("s/d0", 1 s)
  CHECK(rig.engine.next_due() == t0);
  rig.engine.run(t0);
  CHECK(rig.sent.size() == 1);
  rig.engine.run(t0 + 2500 * kMs);  // the loop stalled for 2.5 intervals: one late round
  CHECK(rig.sent.size() == 2);
  rig.engine.run(t0 + 2999 * kMs);
  CHECK(rig.sent.size() == 2);
  rig.engine.run(t0 + 3000 * kMs);  // the grid, not 1 s after the late round
  CHECK(rig.sent.size() == 3);
}

TEST_CASE("a reply with an absurd send time gets the monotonic RTT, without overflow") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1}");
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);
  REQUIRE(rig.sent.size() == 1);
  auto reply = Rig::reply_to(rig.sent[0].second);
  // The send time in the payload (bytes 16..23 after the 8-byte header) as far from now as it
  // gets: rx_ns - send_ns would overflow int64_t (found by tests/fuzz/icmp_fuzz.cpp).
  for (std::size_t i = 0; i < 8; ++i) reply[kIcmpHeader + 16 + i] = i == 0 ? 0x80 : 0x00;
  rig.engine.on_packet(false, reply.data(), reply.size(), v4("127.0.0.1"), rig.realtime, t0 + 30 * kMs);
  CHECK(rig.m()->received.get() == 1);
  CHECK(rig.m()->rtt.sum.get() == Approx(0.030));
}

TEST_CASE("duplicates, late replies, wrong cookie, wrong source and truncation are counted apart") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 2, spacing: 100ms}");
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);
  rig.engine.run(t0 + 100 * kMs);
  REQUIRE(rig.sent.size() == 2);
  auto r0 = Rig::reply_to(rig.sent[0].second);
  auto r1 = Rig::reply_to(rig.sent[1].second);

  auto bad_cookie = r0;
  bad_cookie[kIcmpHeader] ^= 0xff;
  rig.deliver(bad_cookie, "127.0.0.1", t0 + 5 * kMs, kMs);
  CHECK(rig.fam.invalid_cookie.Value() == 1);

  rig.deliver(r0, "127.0.0.99", t0 + 5 * kMs, kMs);  // right packet, wrong source
  CHECK(rig.fam.invalid_source.Value() == 1);

  rig.engine.on_packet(false, r0.data(), 20, v4("127.0.0.1"), 0, t0 + 6 * kMs);
  CHECK(rig.fam.invalid_truncated.Value() == 1);

  auto other_slot = r0;
  other_slot[kIcmpHeader + 11] = 9;  // slot 9 does not exist
  rig.deliver(other_slot, "127.0.0.1", t0 + 5 * kMs, kMs);
  CHECK(rig.fam.invalid_unknown.Value() == 1);

  auto foreign = r0;
  foreign[4] = 0;  // another process's identifier: silently not ours
  rig.deliver(foreign, "127.0.0.1", t0 + 5 * kMs, kMs);

  CHECK(rig.m()->received.get() == 0);
  rig.deliver(r0, "127.0.0.1", t0 + 8 * kMs, kMs);
  rig.deliver(r0, "127.0.0.1", t0 + 9 * kMs, kMs);
  CHECK(rig.m()->received.get() == 1);
  CHECK(rig.m()->duplicates.get() == 1);

  rig.engine.run(t0 + 700 * kMs);  // packet 1 expired
  rig.deliver(r1, "127.0.0.1", t0 + 701 * kMs, 601 * kMs);
  CHECK(rig.m()->late.get() == 1);
  CHECK(rig.m()->received.get() == 1);
  CHECK(rig.m()->loss.get() == Approx(0.5));
}

TEST_CASE("ICMP errors quoting our request are counted per device, never as received") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1, spacing: 100ms}");
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);
  REQUIRE(rig.sent.size() == 1);
  const auto& req = rig.sent[0].second;
  // Destination unreachable from a router: ICMP header, then the quoted IPv4 header and request.
  std::vector<std::uint8_t> err(8 + 20 + req.size(), 0);
  err[0] = 3;
  err[1] = 1;
  std::uint8_t* ip = &err[8];
  ip[0] = 0x45;
  ip[9] = 1;  // ICMP
  inet_pton(AF_INET, "127.0.0.1", ip + 16);
  std::memcpy(&err[28], req.data(), req.size());
  rig.engine.on_packet(false, err.data(), err.size(), v4("127.0.0.254"), 0, t0 + kMs);
  CHECK(rig.m()->err_unreach.get() == 1);
  CHECK(rig.m()->received.get() == 0);
  err[0] = 11;
  rig.engine.on_packet(false, err.data(), err.size(), v4("127.0.0.254"), 0, t0 + kMs);
  CHECK(rig.m()->err_ttl.get() == 1);
  rig.engine.run(t0 + 600 * kMs);
  CHECK(rig.m()->up.get() == 0);
  CHECK(rig.m()->loss.get() == 1);
}

TEST_CASE("everything due in one run goes out in batches; a failed packet fails alone") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1}", 100);
  rig.ok_at = [](std::size_t i) { return i % 2 == 0; };
  rig.engine.run(1000 * kMs);  // every target's first start is due by now
  CHECK(rig.batches == std::vector<std::size_t>{IcmpEngine::kBatch, 100 - IcmpEngine::kBatch});
  double sent = 0;
  for (int i = 0; i < 100; ++i) sent += static_cast<double>(rig.m(i)->sent.get());
  CHECK(sent == 50);
  CHECK(rig.fam.send_errors_v4->Value() == 50);
}

TEST_CASE("failed sends and unresolved addresses count as loss, not as sent") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 2, spacing: 100ms}");
  rig.send_ok = false;
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);
  rig.engine.run(t0 + 100 * kMs);
  rig.engine.run(t0 + 700 * kMs);
  CHECK(rig.m()->sent.get() == 0);
  CHECK(rig.fam.send_errors_v4->Value() == 2);
  CHECK(rig.m()->loss.get() == 1);
  CHECK(rig.m()->up.get() == 0);
  rig.engine.set_address("s/d0", sockaddr_storage{});  // DNS never answered
  const std::size_t before = rig.sent.size();
  rig.engine.run(t0 + 1000 * kMs);
  rig.engine.run(t0 + 1100 * kMs);
  rig.engine.run(t0 + 1700 * kMs);
  CHECK(rig.sent.size() == before);
  CHECK(rig.m()->up.get() == 0);
}

TEST_CASE("start times spread across the interval: no thundering herd") {
  Rig rig("{interval: 10s, timeout: 1s, packets: 1, spacing: 100ms}", 250);
  // Count first-round starts per one-second bucket of the 10 s interval.
  std::map<std::int64_t, int> per_second;
  std::int64_t now = 0;
  std::size_t seen = 0;
  while (seen < 250) {
    now = *rig.engine.next_due();
    rig.engine.run(now);
    for (; seen < rig.sent.size(); ++seen) per_second[now / (1000 * kMs)]++;
  }
  CHECK(now < 10000 * kMs);
  CHECK(per_second.size() == 10);
  for (const auto& [sec, n] : per_second) {
    INFO("second " << sec);
    CHECK(n >= 10);  // 25 expected per second
    CHECK(n <= 45);
  }
}

TEST_CASE("start offsets are fixed values of the key: stable across restarts, reloads and releases") {
  // Fixed expected values: a change to the hash moves every probe's start time in production.
  CHECK(splay_offset_ns("bac-kan/router", 10'000'000'000) == 9'822'359'401);
  CHECK(splay_offset_ns("bac-kan/router", 60'000'000'000) == 19'822'359'401);
  CHECK(splay_offset_ns("cho-don/vc", 10'000'000'000) == 1'198'635'077);
  CHECK(splay_offset_ns("", 10'000'000'000) == 1'485'797'458);
  CHECK(splay_offset_ns("bac-kan/router", 0) == 0);
}

TEST_CASE("a reload keeps counters and schedule of unchanged targets, drops removed ones") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1, spacing: 100ms}", 2);
  std::int64_t now = 0;
  while (rig.sent.size() < 2) {
    now = *rig.engine.next_due();
    rig.engine.run(now);
  }
  for (auto& [to, p] : rig.sent) {
    char a[32];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(to).sin_addr, a, sizeof a);
    rig.deliver(Rig::reply_to(p), a, now + kMs, kMs);
  }
  CHECK(rig.m(0)->received.get() == 1);
  // Reload with only d0 left.
  std::vector<Target> keep = {rig.targets[0]};
  rig.engine.set_targets(keep, now + 2 * kMs);
  CHECK(rig.engine.size() == 1);
  CHECK(rig.m(0)->received.get() == 1);
  std::string text;
  rig.expo.render(text);
  CHECK(text.find("device=\"d1\"") == std::string::npos);
  CHECK(text.find("device=\"d0\"") != std::string::npos);
  // d0 is probed again one interval after its previous round.
  const std::size_t before = rig.sent.size();
  rig.engine.run(now + 1000 * kMs);
  CHECK(rig.sent.size() == before + 1);
}

TEST_CASE("pacing: sends beyond the rate are deferred, not dropped") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1, spacing: 100ms}", 200);
  rig.engine.set_rate(100);  // 100 packets/s, burst 1
  std::int64_t now = 0;
  while (rig.sent.size() < 200 && now < 5000 * kMs) {
    now = *rig.engine.next_due();
    rig.engine.run(now);
  }
  CHECK(rig.sent.size() == 200);
  CHECK(now >= 1900 * kMs);  // 200 packets at 100/s take about two seconds
}

TEST_CASE("the exposition renders every series in the text format") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 2, spacing: 100ms, rtt_buckets: [0.001, 0.01]}");
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);
  rig.engine.run(t0 + 100 * kMs);
  rig.deliver(Rig::reply_to(rig.sent[0].second), "127.0.0.1", t0 + 101 * kMs, 500000);   // 0.5 ms
  rig.deliver(Rig::reply_to(rig.sent[1].second), "127.0.0.1", t0 + 102 * kMs, 5 * kMs);  // 5 ms
  std::string text;
  rig.expo.render(text);
  const std::string l = "device=\"d0\",site=\"s\"";
  for (const std::string& line : {
           std::string("# TYPE siteprobe_icmp_rtt_seconds histogram"),
           "siteprobe_device_up{" + l + "} 1",
           "siteprobe_icmp_packets_sent_total{" + l + "} 2",
           "siteprobe_icmp_packets_received_total{" + l + "} 2",
           "siteprobe_icmp_loss_ratio{" + l + "} 0",
           "siteprobe_icmp_rtt_seconds_bucket{" + l + ",le=\"0.001\"} 1",
           "siteprobe_icmp_rtt_seconds_bucket{" + l + ",le=\"0.01\"} 2",
           "siteprobe_icmp_rtt_seconds_bucket{" + l + ",le=\"+Inf\"} 2",
           "siteprobe_icmp_rtt_seconds_sum{" + l + "} 0.0055",
           "siteprobe_icmp_rtt_seconds_count{" + l + "} 2",
       }) {
    INFO(line);
    CHECK(text.find(line + "\n") != std::string::npos);
  }
  // Rare-event counters have their header but no series until they count (issue #12).
  CHECK(text.find("# TYPE siteprobe_icmp_errors_total counter\n") != std::string::npos);
  CHECK(text.find("siteprobe_icmp_errors_total{") == std::string::npos);
  CHECK(text.find("siteprobe_icmp_duplicate_replies_total{") == std::string::npos);
  rig.deliver(Rig::reply_to(rig.sent[0].second), "127.0.0.1", t0 + 103 * kMs, 500000);
  text.clear();
  rig.expo.render(text);
  CHECK(text.find("siteprobe_icmp_duplicate_replies_total{" + l + "} 1\n") != std::string::npos);
  // Label values are escaped.
  CHECK(render_labels({{"name", "a\"b\\c\nd"}, {"a", "Bắc Kạn"}}) ==
        "a=\"Bắc Kạn\",name=\"a\\\"b\\\\c\\nd\"");
}

TEST_CASE("a scrape renders in parts of bounded size, all from the view it started with") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1}", 250);
  std::string whole;
  rig.expo.render(whole);
  Exposition::Parts parts = rig.expo.parts();
  std::string text, part;
  int n = 0;
  while (parts(part)) {
    CHECK(part.size() <= Exposition::kPart + 2048);             // past kPart: one series' lines at most
    if (++n == 1) rig.engine.set_targets({rig.targets[0]}, 1);  // a reload during the scrape
    text += part;
    part.clear();
  }
  CHECK(n > 5);
  CHECK(text == whole);  // every series of the view, in every family
  std::string after;
  rig.expo.render(after);
  CHECK(after.find("device=\"d1\"") == std::string::npos);
  CHECK(after.find("device=\"d0\"") != std::string::npos);
}

TEST_CASE("binding a datagram ICMP socket reports failures instead of using identifier 0") {
  // A UDP socket stands in for the ICMP one: bind() and getsockname() behave the same way, and it
  // needs no privilege or ping_group_range.
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  std::uint16_t ident = 0;
  CHECK(bind_icmp_ident(fd, AF_INET, ident) == 0);
  CHECK(ident != 0);
  // A second bind fails (EINVAL): reported, and the identifier is not replaced by a wrong one.
  const std::uint16_t first = ident;
  CHECK(bind_icmp_ident(fd, AF_INET, ident) == EINVAL);
  CHECK(ident == first);
  close(fd);
  CHECK(bind_icmp_ident(fd, AF_INET, ident) == EBADF);
}

TEST_CASE(
    "a stalled prober judges replies by their kernel time, and rounds it fell behind on get no verdict") {
  Rig r("{interval: 1s, timeout: 500ms, packets: 1}", 1);
  std::vector<probes::RoundResult> rounds;
  r.engine.on_round([&](std::uint32_t, const probes::RoundResult& x) { rounds.push_back(x); });
  std::vector<std::uint8_t> pending;  // a reply that sits in the socket while the loop is stopped
  std::int64_t now = 0, sent_realtime = 0;
  r.engine.set_drain([&] {
    if (pending.empty()) return;
    r.engine.on_packet(false, pending.data(), pending.size(), v4("127.0.0.1"), sent_realtime + 1'000'000,
                       now);
    pending.clear();
  });
  // Every round: the request goes out, its reply arrives 1 ms later (kernel time), but the loop
  // only runs again 800 ms later: the deadline (500 ms) is due then too, and the reply must win.
  for (int i = 0; i < 5; ++i) {
    const std::size_t before = r.sent.size();
    r.engine.run(now);
    while (r.sent.size() == before) {  // the round starts at its splayed offset
      now += 1'000'000;
      r.engine.run(now);
    }
    pending = Rig::reply_to(r.sent.back().second);
    sent_realtime = r.realtime;
    now += 800'000'000;
    r.realtime += 800'000'000;
    r.engine.run(now);
  }
  REQUIRE(rounds.size() >= 4);
  for (const auto& x : rounds) CHECK(x.received == 1);
  CHECK(r.m()->late.get() == 0);

  // The kernel dropped replies while a round was in flight: that round gets no verdict.
  rounds.clear();
  const std::size_t before = r.sent.size();
  while (r.sent.size() == before) r.engine.run(now += 1'000'000);
  r.engine.drops_seen(now + 100'000'000);
  r.engine.run(now += 800'000'000);
  REQUIRE(rounds.size() == 1);
  CHECK(rounds[0].stalled);
  CHECK(r.fam.stalled_rounds.Value() == 1);
  CHECK(r.m()->loss.get() == 0);  // the last verdict stands
}

TEST_CASE("rounds a starved prober could not send in time end without a verdict, once each") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1, spacing: 100ms}", 200);
  rig.engine.set_rate(100);  // half of what 200 targets at 1 Hz need
  std::vector<probes::RoundResult> rounds;
  rig.engine.on_round([&](std::uint32_t, const probes::RoundResult& x) { rounds.push_back(x); });
  std::int64_t now = 0;
  while (now < 10'000 * kMs) {
    now = *rig.engine.next_due();
    rig.engine.run(now);
  }
  CHECK(rounds.size() <= 200UL * 11);  // at most one result per target and interval
  CHECK(rig.fam.stalled_rounds.Value() <= static_cast<double>(rounds.size()));
  for (const auto& x : rounds) CHECK((x.stalled || x.received == 0));  // nobody answers here
}

TEST_CASE("rounds come back with the target's device index, the new one after a reload renumbers") {
  Rig rig("{interval: 1s, timeout: 500ms, packets: 1, spacing: 100ms}", 2);
  rig.targets[0].device_index = 7;
  rig.targets[1].device_index = 3;
  rig.engine.set_targets(rig.targets, 0);
  std::vector<std::uint32_t> seen;
  rig.engine.on_round([&](std::uint32_t device, const probes::RoundResult&) { seen.push_back(device); });
  std::int64_t now = 0;
  const auto run_until = [&](std::int64_t end) {
    while (rig.engine.next_due() && *rig.engine.next_due() < end) {
      now = *rig.engine.next_due();
      rig.engine.run(now);
    }
  };
  run_until(2000 * kMs);
  REQUIRE(!seen.empty());
  for (auto d : seen) CHECK((d == 7 || d == 3));
  // The same targets, renumbered (a device was added before them in the inventory).
  rig.targets[0].device_index = 8;
  rig.targets[1].device_index = 4;
  rig.engine.set_targets(rig.targets, now);
  seen.clear();
  run_until(5000 * kMs);
  REQUIRE(!seen.empty());
  for (auto d : seen) CHECK((d == 8 || d == 4));
}

TEST_CASE(
    "probe_now: an extra round at once, or when the round in flight ends; confirmations while silent; the "
    "grid stays") {
  Rig rig("{interval: 30s, timeout: 500ms, packets: 1}");  // down_after 2: up to 2 extra rounds
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);                        // the first round, on the grid
  const std::int64_t now = t0 + 2000 * kMs;  // it ended; the next is 28 s away
  rig.engine.run(now);
  const std::size_t before = rig.sent.size();
  rig.engine.probe_now("s/d0", now);
  rig.engine.probe_now("nobody", now);  // unknown keys are ignored
  rig.engine.run(now);
  CHECK(rig.sent.size() == before + 1);
  rig.engine.probe_now("s/d0", now + kMs);  // its round is in flight: the next waits for its end
  rig.engine.run(now + kMs);
  CHECK(rig.sent.size() == before + 1);
  rig.engine.run(now + 500 * kMs);  // it ended (timeout): the one asked for starts at once
  CHECK(rig.sent.size() == before + 2);
  rig.engine.run(now + 1000 * kMs);  // no answer: one confirmation (down_after 2)
  CHECK(rig.sent.size() == before + 3);
  rig.engine.run(now + 1500 * kMs);  // silent twice: enough to be down, no more
  rig.engine.run(t0 + 30000 * kMs - 1);
  CHECK(rig.sent.size() == before + 3);
  rig.engine.run(t0 + 30000 * kMs);  // the grid is kept
  CHECK(rig.sent.size() == before + 4);
}

TEST_CASE("probe_now: an answer to an extra round ends the confirmations") {
  Rig rig("{interval: 30s, timeout: 500ms, packets: 1}");
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);
  const std::int64_t now = t0 + 2000 * kMs;
  rig.engine.run(now);
  const std::size_t before = rig.sent.size();
  rig.engine.probe_now("s/d0", now);
  rig.engine.run(now);
  REQUIRE(rig.sent.size() == before + 1);
  rig.deliver(Rig::reply_to(rig.sent.back().second), "127.0.0.1", now + 10 * kMs, 10 * kMs);
  rig.engine.run(now + 1000 * kMs);
  rig.engine.run(t0 + 30000 * kMs - 1);
  CHECK(rig.sent.size() == before + 1);  // up: no confirmation
  CHECK(rig.m()->up.get() == 1);
}

TEST_CASE("probe_now during a grid round: the extra rounds follow it, confirming a silent device") {
  Rig rig("{interval: 30s, timeout: 500ms, packets: 1}");
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);  // a grid round in flight...
  const std::size_t before = rig.sent.size();
  rig.engine.probe_now("s/d0", t0 + 100 * kMs);  // ...when the trap comes
  rig.engine.run(t0 + 100 * kMs);
  CHECK(rig.sent.size() == before);
  rig.engine.run(t0 + 500 * kMs);  // it timed out: the first extra round
  CHECK(rig.sent.size() == before + 1);
  rig.engine.run(t0 + 1000 * kMs);  // silent: the confirmation
  CHECK(rig.sent.size() == before + 2);
  rig.engine.run(t0 + 1500 * kMs);
  rig.engine.run(t0 + 29000 * kMs);
  CHECK(rig.sent.size() == before + 2);
}

TEST_CASE("probe_now: a grid start during an extra round does not cut it short (no stalled round)") {
  Rig rig("{interval: 3s, timeout: 500ms, packets: 1}");
  std::vector<RoundResult> rounds;
  rig.engine.on_round([&](std::uint32_t, const RoundResult& r) { rounds.push_back(r); });
  const std::int64_t t0 = *rig.engine.next_due();
  rig.engine.run(t0);
  rig.engine.run(t0 + 500 * kMs);  // the grid round: silent
  rig.engine.probe_now("s/d0", t0 + 2800 * kMs);
  rig.engine.run(t0 + 2800 * kMs);  // the extra round; the next grid start comes at t0 + 3 s...
  rig.engine.run(t0 + 3000 * kMs);
  rig.engine.run(t0 + 3300 * kMs);  // ...and it ends on its own timeout: silent, a verdict
  rig.engine.run(t0 + 3800 * kMs);  // its confirmation, silent too
  REQUIRE(rounds.size() == 3);
  for (const auto& r : rounds) {
    CHECK_FALSE(r.stalled);
    CHECK(r.received == 0);
  }
  rig.engine.run(t0 + 6000 * kMs);  // the grid goes on
  rig.engine.run(t0 + 6500 * kMs);
  CHECK(rounds.size() == 4);
}
