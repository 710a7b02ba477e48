// STAMP packets (probes/stamp_packet.h), the statistics of a stream (probes/stamp.h) and a real
// sender and reflector over loopback (probes/stamp_reflect.h).
#include "probes/stamp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "probes/stamp_packet.h"
#include "probes/stamp_reflect.h"
#include "util/net.h"

using namespace siteprobe;
using namespace siteprobe::probes;
using namespace siteprobe::probes::stamp;

namespace {

std::vector<unsigned char> sender(std::uint32_t seq, std::uint64_t ts, std::size_t size, bool cos = true) {
  std::vector<unsigned char> b(size);
  SenderPacket p;
  p.seq = seq;
  p.timestamp = ts;
  p.ssid = 0x1234;
  if (cos) p.cos = ClassOfService{34, 0, 0, 0};
  REQUIRE(encode_sender(p, b.data(), size));
  return b;
}

ReflectedPacket reflect(const std::vector<unsigned char>& in, std::uint32_t rseq, std::uint8_t tos,
                        std::uint8_t* dscp = nullptr) {
  std::vector<unsigned char> out(kMaxPacket);
  std::uint8_t d = 0;
  const std::size_t n = encode_reflected(in.data(), in.size(), rseq, 100, 200, 63, tos, out.data(), &d);
  REQUIRE(n == std::max(in.size(), kBaseSize));
  if (dscp) *dscp = d;
  auto r = decode_reflected(out.data(), n);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("sender and reflector packets round-trip, with the CoS TLV filled in by the reflector") {
  const auto in = sender(7, 0x0102030405060708ULL, 1200);
  std::uint8_t dscp = 99;
  const auto r = reflect(in, 3, 0x00 << 2 | 1, &dscp);  // arrived as CS0, ECN 1
  CHECK(r.seq == 3);
  CHECK(r.sender_seq == 7);
  CHECK(r.sender_timestamp == 0x0102030405060708ULL);
  CHECK(r.receive_timestamp == 100);
  CHECK(r.timestamp == 200);
  CHECK(r.sender_ttl == 63);
  CHECK(r.ssid == 0x1234);
  REQUIRE(r.cos);
  CHECK(r.cos->dscp1 == 34);  // asked for
  CHECK(r.cos->dscp2 == 0);   // received: rewritten on the way
  CHECK(r.cos->ecn == 1);
  CHECK(dscp == 34);  // the reply is marked as asked
  CHECK_FALSE(r.tlv_flagged);
  // The CoS value's bits (RFC 8972 section 4.4): DSCP1 6, DSCP2 6, ECN 2, RP 2, reserved 16.
  std::vector<unsigned char> out(kMaxPacket);
  encode_reflected(in.data(), in.size(), 0, 0, 0, 0, 46 << 2, out.data(), nullptr);
  CHECK(out[44 + 1] == kTlvClassOfService);
  CHECK(out[48] == (34 << 2 | 46 >> 4));
  CHECK(out[49] == ((46 & 0xf) << 4));
}

TEST_CASE("a TWAMP-Light sender's short packet gets a 44-octet reply; no TLV means no CoS") {
  std::vector<unsigned char> in(14, 0);
  in[3] = 9;
  std::uint8_t dscp = 0;
  const auto r = reflect(in, 9, 26 << 2, &dscp);
  CHECK(r.sender_seq == 9);
  CHECK_FALSE(r.cos);
  CHECK(dscp == 26);  // without a CoS TLV the reply keeps the DSCP received
  std::vector<unsigned char> out(kMaxPacket);
  CHECK(encode_reflected(in.data(), 13, 0, 0, 0, 0, 0, out.data(), nullptr) == 0);
  std::vector<unsigned char> big(kMaxPacket + 1);
  CHECK(encode_reflected(big.data(), big.size(), 0, 0, 0, 0, 0, out.data(), nullptr) == 0);
}

TEST_CASE("the reflector flags unknown and cut-short TLVs, and the sender sees the flag") {
  auto in = sender(1, 5, 100, false);
  in[44] = 0;
  in[45] = 200;  // an unknown type
  in[46] = 0;
  in[47] = 4;
  in[52] = 0;
  in[53] = kTlvClassOfService;
  in[54] = 0x7f;  // length runs past the end
  in[55] = 0xff;
  std::vector<unsigned char> out(kMaxPacket);
  REQUIRE(encode_reflected(in.data(), in.size(), 0, 0, 0, 0, 0, out.data(), nullptr) == 100);
  CHECK((out[44] & kFlagUnrecognized) != 0);
  CHECK((out[52] & kFlagMalformed) != 0);
  const auto r = decode_reflected(out.data(), 100);
  REQUIRE(r);
  CHECK(r->tlv_flagged);
  CHECK_FALSE(r->cos);
  Invalid why{};
  CHECK_FALSE(decode_reflected(out.data(), 43, &why));
  CHECK(why == Invalid::Short);
}

TEST_CASE("encode_sender refuses sizes that cannot hold the packet") {
  std::vector<unsigned char> b(kMaxPacket + 1);
  SenderPacket p;
  CHECK(encode_sender(p, b.data(), 44));
  CHECK_FALSE(encode_sender(p, b.data(), 43));
  p.cos = ClassOfService{};
  CHECK_FALSE(encode_sender(p, b.data(), 55));
  CHECK(encode_sender(p, b.data(), 56));
  CHECK_FALSE(encode_sender(p, b.data(), kMaxPacket + 1));
}

TEST_CASE("DSCP names") {
  for (const char* n : {"CS0", "CS1", "CS7", "AF11", "AF23", "AF41", "AF43", "EF"}) {
    const auto d = parse_dscp(n);
    REQUIRE(d);
    CHECK(dscp_name(*d) == n);
  }
  CHECK(parse_dscp("AF41") == 34);
  CHECK(parse_dscp("BE") == 0);
  CHECK(parse_dscp("63") == 63);
  CHECK_FALSE(parse_dscp("64"));
  CHECK_FALSE(parse_dscp("AF44"));
  CHECK_FALSE(parse_dscp("CS8"));
  CHECK_FALSE(parse_dscp(""));
  CHECK(dscp_name(1) == "1");
}

TEST_CASE("NTP timestamps") {
  const timespec t{1796400000, 500000000};
  const auto n = to_ntp(t);
  CHECK((n >> 32) == 1796400000ULL + 2208988800ULL);
  CHECK((n & 0xffffffffULL) == 0x80000000ULL);
  CHECK(ntp_seconds(to_ntp({1, 0}), to_ntp({0, 250000000})) == Approx(0.75));
  CHECK(ntp_seconds(to_ntp({0, 0}), to_ntp({1, 0})) == Approx(-1));
}

namespace {

// A stream of `n` packets after the probes, answered by `answer(i)` (-1: lost; else the
// reflector's sequence number), with a DSCP seen by the reflector.
struct Feed {
  StreamSpec spec;
  StreamStats st{spec, 1000};
  std::uint32_t sent = 0;
  void send(std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i, ++sent) st.sent(sent, sent * 1000000LL, 5000 + sent);
  }
  bool answer(std::uint32_t i, std::uint32_t rseq, std::uint8_t dscp2 = 34, std::uint64_t ts = 0) {
    ReflectedPacket r;
    r.seq = rseq;
    r.sender_seq = 1000 + i;
    r.sender_timestamp = ts ? ts : 5000 + i;
    r.cos = ClassOfService{34, dscp2, 0, 0};
    return st.reply(r, i * 1000000LL + 2000000, 0, 34);
  }
};

}  // namespace

TEST_CASE("stream statistics: no reflector, all lost, loss by direction, QoS, forged and duplicates") {
  SECTION("nothing answered: no reflector, not 100 % loss") {
    Feed f;
    f.send(3);
    const auto p = f.st.summary();
    CHECK(p.verdict == PathTestSummary::Verdict::NoReflector);
    CHECK(p.reason.find("no reflector") == 0);
  }
  SECTION("the probes answered, the stream did not: all lost") {
    Feed f;
    f.send(103);
    for (std::uint32_t i = 0; i < 3; ++i) f.answer(i, i);
    const auto p = f.st.summary();
    CHECK(p.verdict == PathTestSummary::Verdict::AllLost);
    CHECK(p.loss_ratio == 1);
  }
  SECTION("stateful reflector: forward gaps and reverse losses told apart") {
    Feed f;
    f.send(103);
    std::uint32_t rseq = 0;
    int got = 0;
    for (std::uint32_t i = 0; i < 103; ++i) {
      if (i >= 3 && i % 10 == 0) continue;  // lost on the way there: the reflector never counts it
      const std::uint32_t mine = rseq++;
      if (i >= 3 && i % 10 == 5) continue;  // lost on the way back: counted, not received
      CHECK(f.answer(i, mine));
      got += i >= 3;
    }
    const auto p = f.st.summary();
    CHECK(p.verdict == PathTestSummary::Verdict::Loss);
    CHECK(p.loss_ratio == Approx(1 - got / 100.0));
    CHECK(p.loss_forward == Approx(0.10));
    CHECK(p.loss_reverse == Approx(10.0 / 90));
    CHECK(p.reason == "loss 20 % at 2 Mbit/s");
  }
  SECTION("stateless reflector: direction unknown") {
    Feed f;
    f.send(13);
    for (std::uint32_t i = 0; i < 13; ++i)
      if (i != 7) f.answer(i, 1000 + i);
    const auto p = f.st.summary();
    CHECK(p.loss_forward == -1);
    CHECK(p.loss_reverse == -1);
  }
  SECTION("DSCP rewritten on the way there") {
    Feed f;
    f.send(13);
    for (std::uint32_t i = 0; i < 13; ++i) f.answer(i, i, 0);
    const auto p = f.st.summary();
    CHECK(p.verdict == PathTestSummary::Verdict::QosRewritten);
    CHECK(p.dscp == "rewritten to CS0");
    CHECK(p.dscp_forward == 0);
    CHECK(p.reason.find("QoS mark rewritten to CS0") == 0);
  }
  SECTION("forged, stale, duplicated and reordered replies") {
    Feed f;
    f.send(13);
    CHECK_FALSE(f.answer(50, 0));        // never sent
    CHECK_FALSE(f.answer(4, 0, 34, 1));  // wrong timestamp: not our packet
    CHECK(f.answer(5, 5));
    CHECK(f.answer(5, 5));  // again
    CHECK(f.answer(4, 4));  // after 5
    CHECK(f.st.invalid_count() == 2);
    CHECK(f.st.duplicates() == 1);
    CHECK(f.st.reordered() == 1);
    CHECK(f.st.received() == 2);
  }
  SECTION("packets skipped during our own stall are not loss") {
    Feed f;
    f.send(13);
    for (std::uint32_t i = 13; i < 23; ++i) f.st.skipped(i);
    f.sent = 23;
    for (std::uint32_t i = 0; i < 13; ++i) f.answer(i, i);
    const auto p = f.st.summary();
    CHECK(p.verdict == PathTestSummary::Verdict::Ok);
    CHECK(p.loss_ratio == 0);
    CHECK(p.sent == 13);
    CHECK(f.st.skipped_count() == 10);
  }
}

TEST_CASE("a real stream to a real reflector over loopback; garbage to the reflector is counted") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    StampReflector::Options o;
    o.listen = {"127.0.0.1:0"};
    o.stateful = true;
    StampReflector refl(&loop, o);
    REQUIRE(refl.start() == "");
    const int port = refl.ports().at(0);
    // Garbage first: too short, and not a test packet at all, from a plain socket.
    const int g = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char junk[5] = {1, 2, 3, 4, 5};
    sendto(g, junk, sizeof junk, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    close(g);
    StreamSpec spec;
    spec.to = *net::parse_ip("127.0.0.1");
    net::set_port(spec.to, port);
    spec.duration = std::chrono::milliseconds(300);
    spec.timeout = std::chrono::milliseconds(200);
    PathTestSummary got;
    bool done = false;
    StampStream s(&loop, spec, [&](const PathTestSummary& p, const StreamStats&) {
      got = p;
      done = true;
      uv_stop(&loop);
    });
    REQUIRE(s.start() == "");
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(done);
    CHECK(got.verdict == PathTestSummary::Verdict::Ok);
    CHECK(got.received == got.sent);
    CHECK(got.sent > 50);
    CHECK(got.loss_forward == 0);  // stateful: the direction is known
    CHECK(got.dscp == "unchanged");
    std::string metrics;
    refl.exposition()->render(metrics);
    CHECK(metrics.find("siteprobe_reflector_packets_total{result=\"too_short\"} 1") != std::string::npos);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
