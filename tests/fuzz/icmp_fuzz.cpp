// libFuzzer target: ICMP reply parsing and matching (probes/icmp.h).
//
// The input is a small program run against a fresh IcmpEngine with three targets (two IPv4, one
// IPv6), a fake clock and a fake socket that records what the engine sends. Each step is one byte
// of opcode and its operands:
//   0 advance the clock and run due events      3 an ICMP error quoting a request that was sent
//   1 the reply to a request that was sent,     4 reload with a subset of the targets
//     optionally with one byte changed          5 change a target's address
//   2 raw bytes from the socket (IPv4 raw      6 start a path trace (probes/trace.h) toward a
//     packets keep their IP header)               target's address
// so the fuzzer reaches the matching code (cookie, slot, generation, sequence, source) with
// well-formed packets, and the parser with anything at all. Packets reach the tracer first while a
// trace runs, as in IcmpProber. After the program it removes every target and checks the engine's
// bookkeeping (nothing left in flight, gauges within their ranges) and every trace's result.
#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fuzz.h"
#include "inventory/config.h"
#include "probes/icmp.h"
#include "probes/registry.h"
#include "probes/trace.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

constexpr std::uint64_t kCookie = 0x5eed5eed5eed5eedull;  // fixed, so replies can be crafted
constexpr std::uint16_t kIdent = 0x4242;
constexpr std::int64_t kMs = 1000000;

sockaddr_storage addr(const char* a) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, a, &reinterpret_cast<sockaddr_in&>(ss).sin_addr) == 1)
    ss.ss_family = AF_INET;
  else if (inet_pton(AF_INET6, a, &reinterpret_cast<sockaddr_in6&>(ss).sin6_addr) == 1)
    ss.ss_family = AF_INET6;
  return ss;  // AF_UNSPEC for anything else: "not resolved"
}

const char* const kAddrs[] = {"127.0.0.1", "127.0.0.2", "::1", "unresolved", "127.0.0.9"};

struct Inventory {
  std::shared_ptr<const Config> cfg;
  std::vector<Target> targets;
  Inventory() {
    auto r = probes::parse_inventory(
        "sites:\n  - id: s\n    name: S\n    level: province\n    devices:\n"
        "      - {name: a, address: 127.0.0.1, role: router, icmp: {interval: 1s, timeout: 300ms, packets: "
        "3, "
        "spacing: 10ms}}\n"
        "      - {name: b, address: 127.0.0.2, role: router, icmp: {interval: 500ms, timeout: 200ms, "
        "packets: 5, "
        "spacing: 50ms, payload_bytes: 24}}\n"
        "      - {name: c, address: '::1', role: server, icmp: {interval: 2s, timeout: 1s, packets: 1}}\n",
        "fuzz.yml");
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    check(r.config != nullptr, "inventory");
    cfg = r.config;
    for (const auto& d : cfg->sites[0].devices)
      targets.push_back(
          {"s/" + d.name,
           std::make_shared<const DeviceLabels>(prometheus::Labels{{"site", "s"}, {"device", d.name}}), cfg,
           &d});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Inventory inv;
  static prometheus::Registry reg;  // shared: registering the families per input is most of the cost
  static IcmpFamilies fam(reg);
  IcmpExposition expo;
  std::int64_t mono = 1000 * kMs, realtime = 1'700'000'000'000'000'000;
  std::vector<std::pair<sockaddr_storage, std::vector<std::uint8_t>>> sent;
  IcmpEngine engine(
      fam, expo, kCookie,
      [&](IcmpEngine::OutPacket* batch, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
          if (sent.size() < 256) sent.emplace_back(batch[i].to, batch[i].bytes);
          batch[i].ok = true;
        }
      },
      [&] { return realtime; });
  engine.on_round([](std::uint32_t, const RoundResult& r) {
    check(r.received >= 0 && r.received <= r.attempted, "round received <= attempted");
  });
  engine.set_ident(false, kIdent);
  engine.set_ident(true, kIdent);
  PathTracer tracer(
      kCookie ^ 1,
      [&](const sockaddr_storage& to, const std::vector<std::uint8_t>& pkt, int ttl) {
        check(ttl >= 1 && ttl <= PathTracer::kMaxHops, "trace TTL");
        if (sent.size() < 256) sent.emplace_back(to, pkt);
        return true;
      },
      [&] { return realtime; });
  tracer.set_ident(false, kIdent ^ 0x8000);
  tracer.set_ident(true, kIdent ^ 0x8000);
  int traces = 0, done = 0;
  const auto on_packet = [&](bool v6, const std::uint8_t* p, std::size_t len, const sockaddr_storage& from,
                             std::int64_t rx) {
    engine.prefetch(v6, &p, &len, 1);  // reads the forged packet too, as read_socket() has it do
    if (!(tracer.active() && tracer.on_packet(v6, p, len, from, mono)))
      engine.on_packet(v6, p, len, from, rx, mono);
  };
  std::vector<sockaddr_storage> where(inv.targets.size());
  const auto set_targets = [&](unsigned mask) {
    std::vector<Target> ts;
    for (std::size_t i = 0; i < inv.targets.size(); ++i)
      if (mask >> i & 1) ts.push_back(inv.targets[i]);
    engine.set_targets(ts, mono);
    for (std::size_t i = 0; i < inv.targets.size(); ++i)
      engine.set_address(inv.targets[i].key, where[i] = addr(inv.targets[i].device->address.c_str()));
  };
  set_targets(7);

  Reader in{data, size};
  std::vector<std::uint8_t> pkt;
  while (in.more()) {
    const std::uint8_t op = in.u8();
    switch (op % 7) {
      case 0: {  // time passes
        const std::int64_t d = (in.u16() % 3000) * kMs;
        mono += d;
        realtime += d;
        engine.run(mono);
        tracer.run(mono);
        break;
      }
      case 1: {  // the reply to a sent request
        if (sent.empty()) break;
        const auto& [to, req] = sent[in.u8() % sent.size()];
        pkt = req;
        const bool v6 = to.ss_family == AF_INET6;
        pkt[0] = v6 ? 129 : 0;
        const std::uint8_t how = in.u8();
        if (how & 1) pkt[in.u8() % pkt.size()] = in.u8();
        if (how & 2) pkt.resize(in.u8() % (pkt.size() + 1));
        const sockaddr_storage from = how & 4 ? addr(kAddrs[in.u8() % 5]) : to;
        on_packet(v6, pkt.data(), pkt.size(), from, realtime + (in.u8() - 8) * kMs);
        break;
      }
      case 2: {  // anything at all
        const bool v6 = op & 8, raw_v4 = op & 16;
        pkt.resize(in.u8());
        for (auto& b : pkt) b = in.u8();
        const sockaddr_storage from = addr(kAddrs[in.u8() % 5]);
        const std::uint8_t* p = pkt.data();
        std::size_t len = pkt.size();
        if (!v6 && raw_v4) {  // as IcmpProber::on_readable does for a raw IPv4 socket
          const std::size_t ihl = ipv4_header_len(p, len);
          if (!ihl) break;
          check(ihl <= len, "ipv4_header_len beyond the packet");
          p += ihl;
          len -= ihl;
        }
        on_packet(v6, p, len, from, realtime);
        break;
      }
      case 3: {  // an error from a router, quoting a request
        if (sent.empty()) break;
        const auto& [to, req] = sent[in.u8() % sent.size()];
        const bool v6 = to.ss_family == AF_INET6;
        pkt.assign(8, 0);
        pkt[0] = v6 ? (op & 8 ? 3 : 1) : (op & 8 ? 11 : 3);
        if (v6) {
          std::uint8_t ip[40] = {0x60};
          ip[6] = 58;
          std::memcpy(ip + 24, &reinterpret_cast<const sockaddr_in6&>(to).sin6_addr, 16);
          pkt.insert(pkt.end(), ip, ip + 40);
        } else {
          std::uint8_t ip[20] = {0x45};
          ip[9] = 1;
          std::memcpy(ip + 16, &reinterpret_cast<const sockaddr_in&>(to).sin_addr, 4);
          pkt.insert(pkt.end(), ip, ip + 20);
        }
        pkt.insert(pkt.end(), req.begin(), req.end());
        if (op & 16) pkt.resize(in.u8() % (pkt.size() + 1));
        on_packet(v6, pkt.data(), pkt.size(), addr(kAddrs[in.u8() % 5]), realtime);
        break;
      }
      case 4:  // reload
        set_targets(in.u8());
        break;
      case 5: {  // DNS gives a device another address
        const std::size_t i = in.u8() % inv.targets.size();
        engine.set_address(inv.targets[i].key, where[i] = addr(kAddrs[in.u8() % 5]));
        break;
      }
      case 6: {  // a trace toward a target's address
        const int hops = in.u8() % 70;
        ++traces;
        tracer.start("s/x", where[in.u8() % where.size()], hops, (in.u16() % 3000) * kMs, mono,
                     [&, hops](const TraceResult& r) {
                       ++done;
                       if (!r.error.empty()) return;
                       check(r.last_hop >= 0 && r.last_hop <= std::clamp(hops, 1, PathTracer::kMaxHops),
                             "last hop");
                       check(r.hops.size() == static_cast<std::size_t>(r.last_hop), "hops up to the last");
                       check(r.end == "reached" || r.end == "unreachable" || r.end == "silent", "end");
                       check((r.last_hop == 0) == r.last_address.empty(), "last address");
                     });
        break;
      }
    }
  }
  for (const auto& t : inv.targets) {
    const auto s = engine.series(t.key);
    if (!s) continue;
    const double loss = s->loss.get(), jitter = s->jitter.get(), mean = s->rtt_mean.get();
    check(std::isnan(loss) || (loss >= 0 && loss <= 1), "loss in [0, 1]");
    check(std::isnan(jitter) || jitter >= 0, "jitter >= 0");
    check(std::isnan(mean) || mean >= 0, "rtt mean >= 0");
    check(s->rtt.sum.get() >= 0 && s->rtt.count() == s->received.get(), "histogram");
  }
  tracer.run(mono + 4000 * kMs);
  check(!tracer.active() && done == traces, "every trace ends, once");
  engine.set_targets({}, mono);
  check(engine.in_flight() == 0 && engine.size() == 0, "nothing in flight after removing every target");
  return 0;
}
