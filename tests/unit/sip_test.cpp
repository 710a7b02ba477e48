#include "probes/sip.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "probes/service.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

const std::string kOk =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc123;rport=40000;received=127.0.0.1\r\n"
    "From: <sip:siteprobe@127.0.0.1>;tag=1\r\n"
    "To: <sip:127.0.0.2:5060>;tag=2\r\n"
    "Call-ID: 0011.22@siteprobe\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

SipParse parse(const std::string& s, SipResponse& r, std::string* why = nullptr) {
  return parse_sip_response(s, r, why);
}

}  // namespace

TEST_CASE("a well-formed 200 OK parses with its matching fields") {
  SipResponse r;
  REQUIRE(parse(kOk, r) == SipParse::Ok);
  CHECK(r.code == 200);
  CHECK(r.call_id == "0011.22@siteprobe");
  CHECK(r.branch == "z9hG4bKabc123");
  CHECK(r.cseq == 1);
  CHECK(r.cseq_method == "OPTIONS");
  CHECK(r.length == kOk.size());
}

TEST_CASE("compact header names, any case, folded lines and a body are accepted") {
  const std::string m =
      "SIP/2.0 503 Service Unavailable\r\n"
      "v: SIP/2.0/TCP [::1]:5060 ;BRANCH=z9hG4bKx , SIP/2.0/UDP other;branch=z9hG4bKy\r\n"
      "i: abc\r\n"
      " def\r\n"
      "cseq: 7 options\r\n"
      "l: 4\r\n"
      "\r\n"
      "body";
  SipResponse r;
  REQUIRE(parse(m, r) == SipParse::Ok);
  CHECK(r.code == 503);
  CHECK(r.branch == "z9hG4bKx");
  CHECK(r.call_id == "abc def");
  CHECK(r.cseq == 7);
  CHECK(r.length == m.size());
  // Two messages back to back on a stream: the first one's length is where the second starts.
  SipResponse r2;
  REQUIRE(parse(m + kOk, r2) == SipParse::Ok);
  CHECK(r2.length == m.size());
}

TEST_CASE("a reason phrase that is not UTF-8 is just bytes") {
  std::string m = kOk;
  m.replace(m.find("OK"), 2, "\xff\xfe\xc3(");
  SipResponse r;
  CHECK(parse(m, r) == SipParse::Ok);
  CHECK(r.code == 200);
}

TEST_CASE("truncated responses are incomplete on a stream, and never Ok") {
  SipResponse r;
  for (std::size_t n = 0; n < kOk.size(); ++n) {
    INFO(n);
    const SipParse p = parse(kOk.substr(0, n), r);
    CHECK(p != SipParse::Ok);
  }
  // Cut inside the head: more bytes may come.
  CHECK(parse(kOk.substr(0, 40), r) == SipParse::Incomplete);
  // Body shorter than Content-Length.
  std::string m = kOk;
  m.replace(m.find("Content-Length: 0"), 17, "Content-Length: 10");
  CHECK(parse(m + "abc", r) == SipParse::Incomplete);
}

TEST_CASE("malformed responses are rejected with a reason, and keep the Call-ID when they can") {
  const auto bad = [](const std::string& m, const char* want) {
    SipResponse r;
    std::string why;
    INFO(m);
    CHECK(parse_sip_response(m, r, &why) == SipParse::Malformed);
    CHECK(why == want);
    return r;
  };
  const auto swap = [](std::string m, const std::string& from, const std::string& to) {
    return m.replace(m.find(from), from.size(), to);
  };
  bad(swap(kOk, "SIP/2.0 200", "HTTP/1.1 200"), "bad status line");
  bad(swap(kOk, "SIP/2.0 200", "SIP/2.0 2x0"), "bad status line");
  bad(swap(kOk, "SIP/2.0 200", "SIP/2.0 700"), "bad status line");
  bad(swap(kOk, "SIP/2.0 200 OK", "SIP/2.0 2000 OK"), "bad status line");
  bad("OPTIONS sip:x SIP/2.0\r\n\r\n", "bad status line");
  bad(swap(kOk, "Call-ID: 0011.22@siteprobe\r\n", ""), "no Call-ID");
  bad(swap(kOk, "CSeq: 1 OPTIONS", "CSeq: OPTIONS"), "bad or missing CSeq");
  bad(swap(kOk, "CSeq: 1 OPTIONS", "CSeq: 99999999999 OPTIONS"), "bad or missing CSeq");
  bad(swap(kOk, "Content-Length: 0", "Content-Length: -1"), "bad Content-Length");
  bad(swap(kOk, "Content-Length: 0", "Content-Length: 999999"), "body too large");
  bad(swap(kOk, "Via: SIP/2.0/UDP", "Via SIP/2.0/UDP"), "bad header line");
  bad(swap(kOk, "To:", std::string("T\0o:", 4)), "control character in the head");
  bad("\r\n\r\n", "bad status line");
  // A malformed response that names a Call-ID can still be blamed on its request.
  auto r = bad(swap(kOk, "CSeq: 1 OPTIONS", "CSeq: x"), "bad or missing CSeq");
  CHECK(r.call_id == "0011.22@siteprobe");
}

TEST_CASE("bare LF line endings (missing CRLF) never parse") {
  std::string m = kOk;
  for (std::size_t p; (p = m.find("\r\n")) != std::string::npos;) m.erase(p, 1);
  SipResponse r;
  CHECK(parse(m, r) == SipParse::Incomplete);  // no CRLF CRLF: a datagram like this is dropped
}

TEST_CASE("huge heads are rejected, not buffered without bound") {
  std::string m = kOk;
  m.insert(m.find("Content-Length"), "X-Pad: " + std::string(kSipMaxHead, 'a') + "\r\n");
  SipResponse r;
  std::string why;
  CHECK(parse_sip_response(m, r, &why) == SipParse::Malformed);
  CHECK(why == "head too large");
  // The same without its end: a stream that never ends its head is cut off too.
  CHECK(parse(m.substr(0, kSipMaxHead + 100), r) == SipParse::Malformed);
}

TEST_CASE("a head of more than kSipMaxLines lines is refused, even before it ends") {
  // kOk's head is the status line and 6 headers: 7 lines.
  const auto padded = [](std::size_t lines) {
    std::string m = kOk;
    std::string pad;
    for (std::size_t i = 7; i < lines; ++i) pad += "X: y\r\n";
    return m.insert(m.find("Content-Length"), pad);
  };
  SipResponse r;
  std::string why;
  CHECK(parse_sip_response(padded(kSipMaxLines), r) == SipParse::Ok);
  const std::string m = padded(kSipMaxLines + 1);
  REQUIRE(m.size() < kSipMaxHead);
  CHECK(parse_sip_response(m, r, &why) == SipParse::Malformed);
  CHECK(why == "too many header lines");
  // A head cut before its end (a stream) is refused once it has more lines than allowed.
  const std::string cut = padded(kSipMaxLines + 2).substr(0, m.find("Content-Length") + 6 + 4);
  CHECK(parse_sip_response(cut, r) == SipParse::Malformed);
  CHECK(parse_sip_response(cut.substr(0, cut.size() - 10), r) == SipParse::Incomplete);
}

TEST_CASE("a TCP stream reassembles responses dripped a byte at a time, and 1xx before the final") {
  const std::string trying = "SIP/2.0 100 Trying" + kOk.substr(kOk.find("\r\n"));
  const std::string body = "SIP/2.0 200 OK" + kOk.substr(kOk.find("\r\n"), kOk.find("Content-Length") - 14) +
                           "Content-Length: 5\r\n\r\nhello";
  const std::string all = trying + trying + body;
  SipStream st;
  std::vector<int> codes;
  for (char c : all) {
    st.append({&c, 1});
    SipResponse r;
    for (SipParse p; (p = st.next(r)) != SipParse::Incomplete;) {
      REQUIRE(p == SipParse::Ok);
      codes.push_back(r.code);
    }
  }
  CHECK(codes == std::vector<int>{100, 100, 200});
  CHECK(st.size() == 0);
  // Several messages in one read come out one by one.
  SipStream one;
  one.append(all);
  SipResponse r;
  REQUIRE(one.next(r) == SipParse::Ok);
  CHECK(r.code == 100);
  REQUIRE(one.next(r) == SipParse::Ok);
  REQUIRE(one.next(r) == SipParse::Ok);
  CHECK(r.code == 200);
  CHECK(one.next(r) == SipParse::Incomplete);
}

TEST_CASE("a TCP stream is bounded: an endless head or body is malformed, not buffered") {
  SipStream head;
  SipResponse r;
  SipParse p = SipParse::Incomplete;
  head.append("SIP/2.0 200 OK\r\nX-Pad: ");
  while (p == SipParse::Incomplete) {
    head.append(std::string(1000, 'a'));  // one header that never ends
    CHECK(head.size() <= kSipMaxHead + 1000);
    p = head.next(r);
  }
  CHECK(p == SipParse::Malformed);
  // A bad status line is found as soon as its line ends, without waiting for the end of the head.
  SipStream bad;
  bad.append("HTTP/1.1 400 Bad Request\r\n");
  CHECK(bad.next(r) == SipParse::Malformed);
  // A body larger than allowed is refused from its Content-Length, before it arrives.
  SipStream big;
  big.append(
      "SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKa\r\n"
      "Content-Length: 999999\r\n\r\n");
  std::string why;
  CHECK(big.next(r, &why) == SipParse::Malformed);
  CHECK(why == "body too large");
}

TEST_CASE("a TCP stream dripped a byte at a time costs linear time, not a parse per byte") {
  // The largest message accepted: a 16 KiB head (with many headers) and a 64 KiB body, one byte per
  // read. Parsing the whole buffer on every read took seconds (~80k parses of a 16 KiB head).
  std::string m = "SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKa\r\n";
  while (m.size() < kSipMaxHead - 2000) m += "X-H: " + std::string(80, 'h') + "\r\n";
  m += "Content-Length: " + std::to_string(kSipMaxBody) + "\r\n\r\n" + std::string(kSipMaxBody, 'b');
  SipStream st;
  SipResponse r;
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t ok = 0;
  for (char c : m) {
    st.append({&c, 1});
    if (st.next(r) == SipParse::Ok) ++ok;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ok == 1);
  CHECK(r.length == m.size());
  CHECK(s < 0.5);  // 0.01 s in an unoptimised build, where parsing on every read took 2.6 s
}

TEST_CASE("the OPTIONS request has what RFC 3261 requires") {
  const std::string req =
      build_sip_options({"::1", 5061, true, "::1", 40000, "cid@siteprobe", "z9hG4bKb1", "t1"});
  CHECK(req.rfind("OPTIONS sip:[::1]:5061 SIP/2.0\r\n", 0) == 0);
  CHECK(req.find("\r\nVia: SIP/2.0/TCP [::1]:40000;branch=z9hG4bKb1;rport\r\n") != std::string::npos);
  CHECK(req.find("\r\nMax-Forwards: 70\r\n") != std::string::npos);
  CHECK(req.find("\r\nCall-ID: cid@siteprobe\r\n") != std::string::npos);
  CHECK(req.find("\r\nCSeq: 1 OPTIONS\r\n") != std::string::npos);
  CHECK(req.find("\r\nFrom: <sip:siteprobe@[::1]>;tag=t1\r\n") != std::string::npos);
  CHECK(req.find("\r\nTo: <sip:[::1]:5061>\r\n") != std::string::npos);
  CHECK(req.size() > 4);
  CHECK(req.substr(req.size() - 4) == "\r\n\r\n");
}

// ---- ServiceEngine, driven by an explicit clock ---------------------------------------------------
namespace {
constexpr std::int64_t kS = 1000000000;

ServiceCheck check(const std::string& key, const std::string& svc, bool tcp = false) {
  return {key, svc, {{"site", "s"}, {"device", key}}, 5060, std::chrono::seconds(10), std::chrono::seconds(2),
          tcp};
}
sockaddr_storage loopback() {
  sockaddr_storage a{};
  a.ss_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &reinterpret_cast<sockaddr_in&>(a).sin_addr);
  return a;
}
}  // namespace

TEST_CASE("service engine: one probe per interval, splayed, each finished exactly once") {
  std::vector<std::uint64_t> started, stopped, resent;
  std::vector<CheckResult> results;
  ServiceEngine e(
      true, {"timeout", "refused", "other"},
      [&](std::uint64_t id, const ServiceCheck& c, const sockaddr_storage& to) {
        CHECK(c.port == 5060);
        CHECK(ntohs(reinterpret_cast<const sockaddr_in&>(to).sin_port) == 5060);
        started.push_back(id);
      },
      [&](std::uint64_t id) { stopped.push_back(id); });
  e.set_resend(kS / 2, [&](std::uint64_t id) { resent.push_back(id); });
  e.on_check([&](const std::string&, const CheckResult& r) { results.push_back(r); });
  e.set_checks({check("a", "sip")}, 0);
  e.set_address("a", loopback());
  const std::int64_t first = *e.next_due();
  CHECK(first >= 0);
  CHECK(first < 10 * kS);
  CHECK(first == splay_offset_ns("a/sip", 10 * kS));

  e.run(first);
  REQUIRE(started.size() == 1);
  CHECK(e.in_flight(started[0]));
  e.provisional(started[0]);  // 100 Trying: still waiting
  CHECK(e.in_flight(started[0]));
  e.finish(started[0], ServiceEngine::kAnswered, 200, first + kS / 100);
  e.finish(started[0], ServiceEngine::kAnswered, 503, first + kS / 50);  // a second answer is ignored
  REQUIRE(results.size() == 1);
  CHECK(results[0].up);
  CHECK(results[0].detail == "200");
  auto s = e.series("a", "sip");
  CHECK(s->classes[0].get() == 1);
  CHECK(s->classes[1].get() == 1);
  CHECK(s->classes[4].get() == 0);
  CHECK(s->code.get() == 200);
  CHECK(s->rtt.count() == 1);
  CHECK(resent.empty());  // answered before the first retransmission

  // Next round: no answer. Retransmissions at 0.5 s and 1.5 s, then the timeout at 2 s.
  e.run(first + 10 * kS);
  REQUIRE(started.size() == 2);
  for (std::int64_t t = first + 10 * kS; t <= first + 13 * kS; t += kS / 10) e.run(t);
  CHECK(resent.size() == 2);
  CHECK(stopped == std::vector<std::uint64_t>{started[1]});
  REQUIRE(results.size() == 2);
  CHECK_FALSE(results[1].up);
  CHECK(results[1].detail == "timeout");
  CHECK(s->errors[0].get() == 1);
  CHECK(s->code.get() == 0);
  CHECK(s->up.get() == 0);
  e.finish(started[1], ServiceEngine::kAnswered, 200, first + 13 * kS);  // too late: ignored
  CHECK(results.size() == 2);
  CHECK(s->probes.get() == 2);
}

TEST_CASE("service engine: an endless stream of 100 Trying ends at the probe's deadline") {
  std::vector<std::uint64_t> started, stopped;
  std::vector<CheckResult> results;
  ServiceEngine e(
      true, {"timeout", "refused", "other"},
      [&](std::uint64_t id, const ServiceCheck&, const sockaddr_storage&) { started.push_back(id); },
      [&](std::uint64_t id) { stopped.push_back(id); });
  e.on_check([&](const std::string&, const CheckResult& r) { results.push_back(r); });
  e.set_checks({check("a", "sip", true)}, 0);
  e.set_address("a", loopback());
  const std::int64_t first = *e.next_due();
  e.run(first);
  REQUIRE(started.size() == 1);
  for (std::int64_t t = first; t < first + 2 * kS; t += kS / 1000) {  // 1xx every millisecond
    e.provisional(started[0]);
    e.run(t);
  }
  CHECK(results.empty());
  e.run(first + 2 * kS);                                     // the 2 s timeout
  CHECK(stopped == std::vector<std::uint64_t>{started[0]});  // its connection is closed
  REQUIRE(results.size() == 1);
  CHECK(results[0].detail == "timeout");
  e.provisional(started[0]);  // a 1xx after the deadline counts nothing
  CHECK(e.series("a", "sip")->classes[0].get() == 2000);
}

TEST_CASE("service engine: reloads keep unchanged checks, drop removed ones, and stop their probes") {
  std::vector<std::uint64_t> started, stopped;
  ServiceEngine e(
      false, {"timeout", "refused", "other"},
      [&](std::uint64_t id, const ServiceCheck&, const sockaddr_storage&) { started.push_back(id); },
      [&](std::uint64_t id) { stopped.push_back(id); });
  e.set_checks({check("a", "h323", true), check("a", "https", true), check("b", "h323", true)}, 0);
  e.set_address("a", loopback());
  CHECK(e.size() == 3);
  for (std::int64_t t = 0; t <= 10 * kS; t += kS / 10) e.run(t);
  CHECK(started.size() == 2);  // b has no address: its probes fail at once, nothing is started
  CHECK(e.series("b", "h323")->errors[2].get() == 1);
  auto kept = e.series("a", "h323");
  e.set_checks({check("a", "h323", true)}, 10 * kS);
  CHECK(e.size() == 1);
  CHECK(e.series("a", "h323") == kept);
  CHECK(stopped.size() == 2);  // both in-flight probes of "a" were stopped by the removal or timeout
}
