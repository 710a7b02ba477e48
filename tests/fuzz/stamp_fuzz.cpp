// libFuzzer target: STAMP packets (probes/stamp_packet.h) and a stream's statistics
// (probes/stamp.h) on arbitrary datagrams, as a hostile reflector or sender would send them.
//
// Input: the first byte picks the TOS the datagram "arrived" with; the rest is the datagram.
// Checks: the reflector's reply to anything is either nothing (not a test packet) or exactly
// max(n, 44) bytes that decode as a reflected packet echoing the sender's sequence number and
// timestamp; never longer than the input plus the fixed header (no amplification). Decoding the
// datagram as a reply never reads out of bounds, and feeding it to a stream's statistics (as a
// reply to a stream of 8 packets) gives a summary whose figures are within their ranges.
#include <cmath>
#include <vector>

#include "fuzz.h"
#include "probes/stamp.h"
#include "probes/stamp_packet.h"

using namespace siteprobe::probes;
using namespace siteprobe::probes::stamp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader r{data, size};
  const std::uint8_t tos = r.u8();
  const std::vector<unsigned char> in(r.p, r.p + r.n);
  std::vector<unsigned char> out(kMaxPacket);
  std::uint8_t dscp = 0;
  const std::size_t n = encode_reflected(in.data(), in.size(), 77, 1, 2, 64, tos, out.data(), &dscp);
  if (in.size() < kTwampLightMinSender || in.size() > kMaxPacket) {
    check(n == 0, "a reply to no test packet");
  } else {
    check(n == std::max(in.size(), kBaseSize), "reply length");
    check(dscp < 64, "reply DSCP");
    const auto rep = decode_reflected(out.data(), n);
    check(rep.has_value(), "own reply does not decode");
    check(rep->seq == 77 && rep->sender_seq == sender_seq(in.data(), in.size()), "sequence numbers");
  }
  StreamSpec spec;
  StreamStats st(spec, 0);
  for (std::uint32_t i = 0; i < 8; ++i) st.sent(i, i, i + 1);
  if (const auto rep = decode_reflected(in.data(), in.size())) st.reply(*rep, 10, 10, tos >> 2);
  const auto p = st.summary();
  check(p.loss_ratio >= 0 && p.loss_ratio <= 1, "loss ratio");
  check(p.received <= p.sent, "received <= sent");
  check(!std::isnan(p.mos) && p.mos >= 0 && p.mos <= 4.5, "MOS");
  return 0;
}
