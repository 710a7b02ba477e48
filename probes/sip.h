// SIP OPTIONS prober: is the call service of a video-conference endpoint alive?
//
// Every check sends an RFC 3261 OPTIONS request (Via with a z9hG4bK branch and rport, Call-ID,
// CSeq, Max-Forwards) and waits for the final response: a 2xx means up, any other final code is
// recorded and counted by class. Over UDP all targets share one socket per address family; a
// response is matched by its Call-ID, then checked for our branch, CSeq method and source address.
// Requests are retransmitted RFC 3261 style (500 ms, then doubling) until the timeout. With
// IP_RECVERR an ICMP port unreachable ends a probe at once as `refused`. Over TCP each probe opens
// its own connection. Responses that cannot be parsed or matched are counted and dropped.
// Everything from the network is bounded where it is decoded: a response head to kSipMaxHead
// (so also the number and length of headers), its body to kSipMaxBody, a connection's buffer by
// SipStream. No text from a response is exported: only its status code (and class) and counts.
//
// parse_sip_response() and build_sip_options() are pure, so they are unit-tested without sockets.
// Threading: loop thread only.
#pragma once

#include <prometheus/registry.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "probes/probe.h"

namespace siteprobe::probes {

// The largest response head (status line and headers) accepted, and the largest body. A head has
// at most kSipMaxLines lines (real ones have a few dozen); the cap also bounds the work of
// re-parsing a head that arrives a line at a time.
constexpr std::size_t kSipMaxHead = 16384, kSipMaxBody = 65536, kSipMaxLines = 256;

struct SipResponse {
  int code = 0;
  std::string call_id, branch, cseq_method;  // branch of the top Via
  std::uint32_t cseq = 0;
  std::size_t length = 0;  // bytes of the whole message, head and body
};

enum class SipParse { Ok, Incomplete, Malformed };

// Parses the SIP response at the start of `data`. Incomplete means more bytes are needed (on a
// stream; a datagram that is incomplete is truncated). On Malformed, `call_id` is still set if a
// Call-ID header was found, and `why` says what is wrong.
SipParse parse_sip_response(std::string_view data, SipResponse& out, std::string* why = nullptr);

// The responses of one SIP-over-TCP connection, reassembled from its reads. It holds at most
// kSipMaxHead + kSipMaxBody bytes plus the read just appended: a larger message is Malformed.
// It re-parses only when the result can change (a line ended in the head, or the whole message
// of a complete head has arrived), so a peer that drips its response a byte at a time costs
// linear time, not quadratic. Provisional responses are consumed like any other; the probe's
// deadline ends an endless stream of them.
class SipStream {
 public:
  void append(std::string_view bytes);
  // The next response: Ok (in `r`, and consumed), Incomplete (wait for more bytes) or Malformed
  // (the stream cannot be trusted any more: close it; `why` says what is wrong).
  SipParse next(SipResponse& r, std::string* why = nullptr);
  std::size_t size() const { return in_.size(); }

 private:
  std::string in_;
  std::size_t need_ = 0;     // the head is complete: the message's length, else 0
  bool line_ended_ = false;  // a '\n' arrived since the last parse
};

struct SipRequest {
  std::string host;  // target address; IPv6 without brackets
  int port = 5060;
  bool tcp = false;
  std::string local_host;  // our address as the target sees it, for Via and Contact
  int local_port = 0;
  std::string call_id, branch, tag;
};
std::string build_sip_options(const SipRequest& r);

// ASCII case-insensitive equality, for SIP tokens (methods, header names).
bool ieq(std::string_view a, std::string_view b);

// A prober for every device with `sip.enabled`; nullptr with `err` set if no socket can be opened.
std::unique_ptr<Prober> make_sip_prober(ProbeContext& ctx);

}  // namespace siteprobe::probes
