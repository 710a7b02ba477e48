// libFuzzer target: SIP response parsing (probes/sip.h) on arbitrary bytes, as a datagram or a
// stream delivers them, with a dictionary of SIP syntax (sip.dict). Checks: Malformed comes with a
// reason; an Ok parse has a status code in 100..699 and a length within the data and the head
// and body limits; bytes appended after it (the next message on a stream) change nothing; the
// message cut one byte short does not parse Ok.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "probes/sip.h"
#include "tests/fuzz/fuzz.h"

using namespace siteprobe::probes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  SipResponse r;
  std::string why;
  const SipParse p = parse_sip_response(in, r, &why);
  if (p != SipParse::Ok) {
    check(p == SipParse::Incomplete || !why.empty(), "Malformed without a reason");
    return 0;
  }
  check(r.code >= 100 && r.code <= 699, "status code out of range");
  check(r.length > 0 && r.length <= size && r.length <= kSipMaxHead + kSipMaxBody, "length");
  // Trailing bytes (the next message on a stream) do not change the first message.
  std::string more(in);
  more += "SIP/2.0 200 OK\r\n";
  SipResponse r2;
  check(parse_sip_response(more, r2) == SipParse::Ok, "appending bytes broke an Ok parse");
  check(r2.code == r.code && r2.length == r.length && r2.call_id == r.call_id && r2.branch == r.branch &&
            r2.cseq == r.cseq && r2.cseq_method == r.cseq_method,
        "appending bytes changed the parse");
  // The message cut one byte short is not Ok (on a stream it would be read too early).
  SipResponse r3;
  check(parse_sip_response(in.substr(0, r.length - 1), r3) != SipParse::Ok, "a prefix parsed Ok");
  return 0;
}
