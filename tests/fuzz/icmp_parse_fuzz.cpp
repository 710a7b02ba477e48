// libFuzzer target: the pure ICMP packet parsers (probes/icmp.h) on arbitrary bytes, exactly as the
// receive path calls them: for a raw IPv4 socket the IP header is stripped first. Much faster than
// fuzz_icmp (no engine), so it reaches many more executions on the parsers themselves. The first
// byte picks the family and socket kind; the rest is the packet.
#include <netinet/in.h>

#include <cstdio>
#include <cstdlib>

#include "probes/icmp.h"

using namespace siteprobe;
using namespace siteprobe::probes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool v6 = data[0] & 1, raw_v4 = data[0] & 2;
  const std::uint8_t* p = data + 1;
  std::size_t len = size - 1;
  if (!v6 && raw_v4) {
    const std::size_t ihl = ipv4_header_len(p, len);
    if (!ihl) return 0;
    if (ihl < 20 || ihl > len) std::abort();
    p += ihl;
    len -= ihl;
  }
  const ParsedIcmp r = parse_icmp(v6, p, len);
  // Echo fields decoded means a whole header and payload were there to decode them from.
  if (r.has_fields && len < kIcmpHeader + kPayloadMin) std::abort();
  if (r.kind == IcmpKind::EchoReply && !r.has_fields) std::abort();
  const int fam = r.quoted_dst.ss_family;
  if (fam != 0 && fam != (v6 ? AF_INET6 : AF_INET)) std::abort();
  // A request built from the decoded fields parses back to the same fields.
  if (r.has_fields) {
    const auto req = build_echo(v6, r.fields, 56);
    auto rep = req;
    rep[0] = v6 ? 129 : 0;
    const ParsedIcmp back = parse_icmp(v6, rep.data(), rep.size());
    if (!back.has_fields || back.fields.cookie != r.fields.cookie || back.fields.seq != r.fields.seq ||
        back.fields.slot != r.fields.slot || back.fields.generation != r.fields.generation ||
        back.fields.send_ns != r.fields.send_ns || back.fields.ident != r.fields.ident)
      std::abort();
  }
  return 0;
}
