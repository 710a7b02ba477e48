#include "probes/stamp_packet.h"

#include <cstring>

namespace siteprobe::probes::stamp {
namespace {

constexpr std::uint64_t kNtpUnixOffset = 2208988800ULL;  // seconds from 1900 to 1970

void put16(unsigned char* p, std::uint16_t v) {
  p[0] = static_cast<unsigned char>(v >> 8);
  p[1] = static_cast<unsigned char>(v);
}
void put32(unsigned char* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}
void put64(unsigned char* p, std::uint64_t v) {
  put32(p, static_cast<std::uint32_t>(v >> 32));
  put32(p + 4, static_cast<std::uint32_t>(v));
}
std::uint16_t get16(const unsigned char* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
std::uint32_t get32(const unsigned char* p) {
  return static_cast<std::uint32_t>(get16(p)) << 16 | get16(p + 2);
}
std::uint64_t get64(const unsigned char* p) {
  return static_cast<std::uint64_t>(get32(p)) << 32 | get32(p + 4);
}

void put_cos(unsigned char* v, const ClassOfService& c) {
  v[0] = static_cast<unsigned char>((c.dscp1 & 0x3f) << 2 | (c.dscp2 & 0x3f) >> 4);
  v[1] = static_cast<unsigned char>((c.dscp2 & 0x0f) << 4 | (c.ecn & 3) << 2 | (c.rp & 3));
  v[2] = v[3] = 0;
}
ClassOfService get_cos(const unsigned char* v) {
  ClassOfService c;
  c.dscp1 = static_cast<std::uint8_t>(v[0] >> 2);
  c.dscp2 = static_cast<std::uint8_t>((v[0] & 3) << 4 | v[1] >> 4);
  c.ecn = static_cast<std::uint8_t>((v[1] >> 2) & 3);
  c.rp = static_cast<std::uint8_t>(v[1] & 3);
  return c;
}

}  // namespace

std::uint64_t to_ntp(const timespec& t) {
  const auto sec = static_cast<std::uint64_t>(t.tv_sec) + kNtpUnixOffset;
  const auto frac = (static_cast<std::uint64_t>(t.tv_nsec) << 32) / 1000000000ULL;
  return sec << 32 | frac;
}

double ntp_seconds(std::uint64_t a, std::uint64_t b) {
  return static_cast<double>(static_cast<std::int64_t>(a - b)) / 4294967296.0;
}

bool encode_sender(const SenderPacket& p, unsigned char* buf, std::size_t size) {
  const std::size_t need = p.cos ? kBaseSize + 8 + 4 : kBaseSize;
  if (size < need || size > kMaxPacket) return false;
  std::memset(buf, 0, size);
  put32(buf, p.seq);
  put64(buf + 4, p.timestamp);
  put16(buf + 12, p.error_estimate);
  put16(buf + 14, p.ssid);
  std::size_t o = kBaseSize;
  if (p.cos) {
    buf[o + 1] = kTlvClassOfService;
    put16(buf + o + 2, 4);
    put_cos(buf + o + 4, *p.cos);
    o += 8;
    // With TLVs, everything after the header is TLVs: the rest is one Extra Padding TLV.
    buf[o + 1] = kTlvExtraPadding;
    put16(buf + o + 2, static_cast<std::uint16_t>(size - o - 4));
  }
  return true;
}

std::optional<ReflectedPacket> decode_reflected(const unsigned char* b, std::size_t n, Invalid* why) {
  if (why) *why = Invalid::None;
  if (n < kBaseSize) {
    if (why) *why = Invalid::Short;
    return std::nullopt;
  }
  if (n > kMaxPacket) {
    if (why) *why = Invalid::Long;
    return std::nullopt;
  }
  ReflectedPacket r;
  r.seq = get32(b);
  r.timestamp = get64(b + 4);
  r.ssid = get16(b + 14);
  r.receive_timestamp = get64(b + 16);
  r.sender_seq = get32(b + 24);
  r.sender_timestamp = get64(b + 28);
  r.sender_ttl = b[40];
  // TLVs: a TWAMP-Light reflector pads with whatever it likes, so anything that does not parse
  // as TLVs only means "no CoS TLV", never a bad packet.
  for (std::size_t o = kBaseSize; o + 4 <= n;) {
    const std::uint8_t flags = b[o], type = b[o + 1];
    const std::size_t len = get16(b + o + 2);
    if (o + 4 + len > n) {
      r.tlv_flagged = r.tlv_flagged || type == kTlvClassOfService;
      break;
    }
    if (type == kTlvClassOfService && len == 4) {
      if (flags & (kFlagUnrecognized | kFlagMalformed))
        r.tlv_flagged = true;
      else
        r.cos = get_cos(b + o + 4);
    }
    if (type == 0) break;  // zero padding from a TWAMP-Light reflector
    o += 4 + len;
  }
  return r;
}

std::uint16_t sender_ssid(const unsigned char* in, std::size_t n) {
  return n >= 16 ? get16(in + 14) : 0;
}
std::uint32_t sender_seq(const unsigned char* in, std::size_t n) {
  return n >= 4 ? get32(in) : 0;
}

std::size_t encode_reflected(const unsigned char* in, std::size_t n, std::uint32_t reflector_seq,
                             std::uint64_t receive_ts, std::uint64_t send_ts, std::uint8_t received_ttl,
                             std::uint8_t received_tos, unsigned char* out, std::uint8_t* reply_dscp) {
  if (n < kTwampLightMinSender || n > kMaxPacket) return 0;
  const std::size_t len = n < kBaseSize ? kBaseSize : n;
  std::memset(out, 0, len);
  put32(out, reflector_seq);
  put64(out + 4, send_ts);
  put16(out + 12, kErrorEstimate);
  put16(out + 14, sender_ssid(in, n));
  put64(out + 16, receive_ts);
  std::memcpy(out + 24, in, 4);       // sender sequence number
  std::memcpy(out + 28, in + 4, 8);   // sender timestamp
  std::memcpy(out + 36, in + 12, 2);  // sender error estimate
  out[40] = received_ttl;
  std::uint8_t dscp = received_tos >> 2;
  // TLVs come back in the order they came, at the same offsets (RFC 8972 section 4).
  if (n > kBaseSize) std::memcpy(out + kBaseSize, in + kBaseSize, n - kBaseSize);
  for (std::size_t o = kBaseSize; n > kBaseSize && o + 4 <= n;) {
    const std::uint8_t type = out[o + 1];
    const std::size_t l = get16(out + o + 2);
    if (o + 4 + l > n) {
      out[o] |= kFlagMalformed;
      break;
    }
    if (type == kTlvClassOfService && l == 4) {
      ClassOfService c = get_cos(out + o + 4);
      c.dscp2 = received_tos >> 2;
      c.ecn = received_tos & 3;
      c.rp = 0;
      dscp = c.dscp1;
      put_cos(out + o + 4, c);
    } else if (type != kTlvExtraPadding) {
      out[o] |= kFlagUnrecognized;
    }
    o += 4 + l;
  }
  if (reply_dscp) *reply_dscp = dscp;
  return len;
}

std::optional<std::uint8_t> parse_dscp(const std::string& s) {
  if (s == "BE" || s == "DF" || s == "CS0") return 0;
  if (s == "EF") return 46;
  if (s.size() == 3 && s.compare(0, 2, "CS") == 0 && s[2] >= '0' && s[2] <= '7')
    return static_cast<std::uint8_t>((s[2] - '0') * 8);
  if (s.size() == 4 && s.compare(0, 2, "AF") == 0 && s[2] >= '1' && s[2] <= '4' && s[3] >= '1' && s[3] <= '3')
    return static_cast<std::uint8_t>((s[2] - '0') * 8 + (s[3] - '0') * 2);
  if (!s.empty() && s.size() <= 2 && s.find_first_not_of("0123456789") == std::string::npos) {
    const int v = std::stoi(s);
    if (v <= 63) return static_cast<std::uint8_t>(v);
  }
  return std::nullopt;
}

std::string dscp_name(std::uint8_t d) {
  if (d == 46) return "EF";
  if (d % 8 == 0 && d <= 56) return "CS" + std::to_string(d / 8);
  if (d % 2 == 0 && d / 8 >= 1 && d / 8 <= 4 && (d % 8) / 2 >= 1 && (d % 8) / 2 <= 3)
    return "AF" + std::to_string(d / 8) + std::to_string((d % 8) / 2);
  return std::to_string(d);
}

}  // namespace siteprobe::probes::stamp
