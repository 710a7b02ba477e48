// libFuzzer target: SIP response parsing (probes/sip.h) on arbitrary bytes, as a datagram or a
// stream delivers them, with a dictionary of SIP syntax (sip.dict).
//
// Input: a message in which a 0x00 byte followed by a count c and a byte f stands for
// (c + 1) * 128 copies of f (up to 32 KiB, past the head limit; 160 KiB in all), so that long
// reason phrases, header values and bodies are reached. The stream pass reads it in
// 1 + size % 61 reads of equal size (a byte at a time for short messages).
//
// Checks: Malformed comes with a reason; an Ok parse has a status code in 100..699, a length within
// the data and the head and body limits, and fields within the head limit; bytes appended after it
// (the next message on a stream) change nothing; the message cut one byte short does not parse Ok.
// A SipStream fed the same bytes read by read gives the same responses and the same end as one
// that gets them at once, and never holds more than the limits plus one read. What siteprobe
// exports for a probe answered by each response (the siteprobe_sip_* series and the check's
// detail) is valid UTF-8 and bounded.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.h"
#include "probes/service.h"
#include "probes/sip.h"
#include "util/text.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

// Past the largest message accepted (head and body); more would only slow the fuzzer down.
constexpr std::size_t kMaxInput = 2 * (kSipMaxHead + kSipMaxBody);

std::string expand(Reader& in) {
  std::string out;
  while (in.more()) {
    const std::uint8_t b = in.u8();
    if (b != 0) {
      out += static_cast<char>(b);
      continue;
    }
    const std::size_t n = (std::size_t{in.u8()} + 1) * 128;
    const char f = static_cast<char>(in.u8());
    if (out.size() < kMaxInput) out.append(std::min(n, kMaxInput - out.size()), f);
  }
  return out;
}

struct Result {
  SipParse end;
  std::vector<SipResponse> ok;
};

// Every response of `data` on a stream read `chunk` bytes at a time (0: all at once).
Result stream(std::string_view data, std::size_t chunk) {
  SipStream st;
  Result res{SipParse::Incomplete, {}};
  std::size_t pos = 0;
  do {
    const std::size_t n = chunk ? std::min(chunk, data.size() - pos) : data.size();
    st.append(data.substr(pos, n));
    pos += n;
    SipResponse r;
    while ((res.end = st.next(r)) == SipParse::Ok) res.ok.push_back(r);
    check(st.size() <= kSipMaxHead + kSipMaxBody + n, "stream buffer over its bound");
    if (res.end == SipParse::Malformed) break;
  } while (pos < data.size());
  return res;
}

bool same(const SipResponse& a, const SipResponse& b) {
  return a.code == b.code && a.length == b.length && a.call_id == b.call_id && a.branch == b.branch &&
         a.cseq == b.cseq && a.cseq_method == b.cseq_method;
}

// One SIP check whose probes the responses answer; its exposition is what a scrape would show.
struct Exported {
  std::uint64_t id = 0;
  std::int64_t now = 0;
  std::string detail;
  ServiceEngine engine{true,
                       {"timeout", "refused", "unreachable", "malformed", "closed", "other"},
                       [this](std::uint64_t i, const ServiceCheck&, const sockaddr_storage&) { id = i; },
                       [](std::uint64_t) {}};
  Exported() {
    engine.on_check([this](const std::string&, const CheckResult& r) { detail = r.detail; });
    engine.set_checks({{"bk/vc",
                        "sip",
                        {{"site", "bk"}, {"device", "vc"}, {"name", "Bắc Kạn"}},
                        5060,
                        std::chrono::seconds(10),
                        std::chrono::seconds(2),
                        false}},
                      0);
    sockaddr_storage a{};
    a.ss_family = AF_INET;
    engine.set_address("bk/vc", a);
  }
  void answer(const SipResponse& r) {
    for (const std::uint64_t before = id; id == before;) {  // the next probe
      now = *engine.next_due();
      engine.run(now);
    }
    if (r.code < 200) engine.provisional(id);
    engine.finish(id, r.code < 200 ? ServiceEngine::kTimeout : ServiceEngine::kAnswered, r.code, now + 1000);
    std::string out;
    engine.exposition()->render(out);
    check(text::valid_utf8(out), "exported text is not UTF-8");
    check(out.size() < 8192, "exported text too large", std::to_string(out.size()));
    check(text::valid_utf8(detail) && detail.size() <= 7, "check detail", detail);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader reader{data, size};
  const std::string msg = expand(reader);
  const std::size_t reads = 1 + size % 61, chunk = std::max<std::size_t>(1, (msg.size() + reads - 1) / reads);
  const std::string_view in = msg;

  // A stream gives the same responses whatever the reads, and stays bounded.
  const Result whole = stream(in, 0), parts = stream(in, chunk);
  check(whole.end == parts.end && whole.ok.size() == parts.ok.size(), "reads changed the stream's result");
  for (std::size_t i = 0; i < whole.ok.size(); ++i)
    check(same(whole.ok[i], parts.ok[i]), "reads changed a response");
  static Exported exported;
  for (const auto& r : whole.ok) exported.answer(r);

  SipResponse r;
  std::string why;
  const SipParse p = parse_sip_response(in, r, &why);
  if (p != SipParse::Ok) {
    check(p == SipParse::Incomplete || !why.empty(), "Malformed without a reason");
    return 0;
  }
  check(r.code >= 100 && r.code <= 699, "status code out of range");
  check(r.length > 0 && r.length <= in.size() && r.length <= kSipMaxHead + kSipMaxBody, "length");
  check(r.call_id.size() <= kSipMaxHead && r.branch.size() <= kSipMaxHead &&
            r.cseq_method.size() <= kSipMaxHead,
        "a field larger than the head");
  // Trailing bytes (the next message on a stream) do not change the first message.
  std::string more(in);
  more += "SIP/2.0 200 OK\r\n";
  SipResponse r2;
  check(parse_sip_response(more, r2) == SipParse::Ok, "appending bytes broke an Ok parse");
  check(same(r, r2), "appending bytes changed the parse");
  // The message cut one byte short is not Ok (on a stream it would be read too early).
  SipResponse r3;
  check(parse_sip_response(in.substr(0, r.length - 1), r3) != SipParse::Ok, "a prefix parsed Ok");
  return 0;
}
