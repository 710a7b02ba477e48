// STAMP test packets (RFC 8762, unauthenticated mode) with the RFC 8972 TLVs siteprobe uses:
// Class of Service (type 4) and Extra Padding (type 1). The same 44-octet layout is what a
// TWAMP-Light reflector (RFC 5357 Appendix I) sends back, so a sender built on this talks to both.
//
//   sender:    seq(4) timestamp(8) error-estimate(2) SSID(2) MBZ(28)                 | TLVs
//   reflector: seq(4) timestamp(8) error-estimate(2) SSID(2) receive-timestamp(8)
//              sender-seq(4) sender-timestamp(8) sender-error-estimate(2) MBZ(2)
//              sender-TTL(1) MBZ(3)                                                   | TLVs
//   TLV:       flags(1: U M I) type(1) length(2) value(length)
//   CoS value: DSCP1(6 bits) DSCP2(6) ECN(2) RP(2) reserved(16)  (RFC 8972 section 4.4)
//
// Pure functions on byte buffers: no sockets, no clocks (timestamps come in as arguments), every
// length checked, so the fuzz target (tests/fuzz/stamp_fuzz.cpp) runs them on anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

namespace siteprobe::probes::stamp {

constexpr std::size_t kBaseSize = 44;             // both packet kinds, before TLVs
constexpr std::size_t kTwampLightMinSender = 14;  // a TWAMP-Light sender's packet can be this short
constexpr std::size_t kMaxPacket = 9000;
constexpr std::uint8_t kTlvExtraPadding = 1, kTlvClassOfService = 4;
constexpr std::uint8_t kFlagUnrecognized = 0x80, kFlagMalformed = 0x40;
constexpr std::uint16_t kErrorEstimate = 0x0001;  // S=0 (no external sync), Z=0 (NTP), multiplier 1

// NTP 64-bit timestamps (seconds since 1900 and a binary fraction).
std::uint64_t to_ntp(const timespec& t);
// a - b in seconds (negative if b is later); exact for differences under 68 years.
double ntp_seconds(std::uint64_t a, std::uint64_t b);

struct ClassOfService {
  std::uint8_t dscp1 = 0;  // the DSCP the sender asks the reflector to put on its reply
  std::uint8_t dscp2 = 0;  // the DSCP the reflector received (filled in by the reflector)
  std::uint8_t ecn = 0;    // the ECN the reflector received
  std::uint8_t rp = 0;     // reverse path: 1 if the reflector could not use DSCP1
};

struct SenderPacket {
  std::uint32_t seq = 0;
  std::uint64_t timestamp = 0;
  std::uint16_t error_estimate = kErrorEstimate;
  std::uint16_t ssid = 0;
  std::optional<ClassOfService> cos;  // sent as a CoS TLV (needs size >= 52)
};
// Writes `p` as exactly `size` bytes (kBaseSize..kMaxPacket; with a CoS TLV at least 56): the
// header, the CoS TLV if any, then one Extra Padding TLV (or zero MBZ without TLVs) to `size`.
// Returns false if `size` cannot hold it.
bool encode_sender(const SenderPacket& p, unsigned char* buf, std::size_t size);

// What a reflected packet says.
struct ReflectedPacket {
  std::uint32_t seq = 0;        // the reflector's: its own count in stateful mode, the sender's in stateless
  std::uint64_t timestamp = 0;  // when the reflector sent it
  std::uint16_t ssid = 0;
  std::uint64_t receive_timestamp = 0;  // when the reflector received the sender's packet
  std::uint32_t sender_seq = 0;
  std::uint64_t sender_timestamp = 0;
  std::uint8_t sender_ttl = 0;
  std::optional<ClassOfService> cos;  // present only if the reflector filled in a CoS TLV
  bool tlv_flagged = false;           // a TLV came back with U or M set, or was cut short
};
enum class Invalid { None, Short, Long };
// Parses a reflected packet; nullopt (with why) if it cannot be one.
std::optional<ReflectedPacket> decode_reflected(const unsigned char* buf, std::size_t n,
                                                Invalid* why = nullptr);

// The reflector's side: builds the reply to the sender's packet `in` (n bytes) in `out` (room for
// kMaxPacket) and returns its length: max(n, kBaseSize), or 0 if `in` is no test packet (shorter
// than kTwampLightMinSender or longer than kMaxPacket). TLVs are copied; a CoS TLV gets
// DSCP2/ECN from `received_tos`, unknown TLVs the U flag, a TLV cut short the M flag (and the
// rest is left as it came). `reply_dscp` is set to the DSCP the reply should carry: DSCP1 of a
// CoS TLV if there is one, else the DSCP received.
std::size_t encode_reflected(const unsigned char* in, std::size_t n, std::uint32_t reflector_seq,
                             std::uint64_t receive_ts, std::uint64_t send_ts, std::uint8_t received_ttl,
                             std::uint8_t received_tos, unsigned char* out, std::uint8_t* reply_dscp);
// The SSID of a sender packet (0 for a TWAMP-Light packet, which has MBZ there).
std::uint16_t sender_ssid(const unsigned char* in, std::size_t n);
std::uint32_t sender_seq(const unsigned char* in, std::size_t n);

// DSCP names: "AF41" <-> 34, "CS0"/"BE" <-> 0, "EF" <-> 46; numbers "0".."63" too.
std::optional<std::uint8_t> parse_dscp(const std::string& s);
std::string dscp_name(std::uint8_t dscp);

}  // namespace siteprobe::probes::stamp
