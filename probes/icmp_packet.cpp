// ICMP echo packets: building, checksums, parsing replies and errors, and the datagram socket's
// identifier.
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <linux/sock_diag.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>

#include "metrics/families.h"
#include "probes/icmp.h"
#include "probes/registry.h"

namespace siteprobe::probes {

// ---- Packet format -------------------------------------------------------------------------
namespace {

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
template <typename T>
void put_be(std::uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * (sizeof(T) - 1 - i)));
}
template <typename T>
T get_be(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v = v << 8 | p[i];
  return static_cast<T>(v);
}

std::uint16_t checksum(const std::uint8_t* p, std::size_t n) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n & 1) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Decodes id, seq and our payload fields from an echo message at `p` (ICMP header first).
bool decode_echo(const std::uint8_t* p, std::size_t len, EchoFields& f) {
  if (len < kIcmpHeader + kPayloadMin) return false;
  f.ident = get16(p + 4);
  f.seq = get16(p + 6);
  const std::uint8_t* d = p + kIcmpHeader;
  f.cookie = get_be<std::uint64_t>(d);
  f.slot = get_be<std::uint32_t>(d + 8);
  f.generation = get_be<std::uint32_t>(d + 12);
  f.send_ns = get_be<std::int64_t>(d + 16);
  return true;
}

}  // namespace

std::vector<std::uint8_t> build_echo(bool ipv6, const EchoFields& f, std::size_t payload_bytes) {
  std::vector<std::uint8_t> b;
  build_echo(ipv6, f, payload_bytes, b);
  return b;
}

void build_echo(bool ipv6, const EchoFields& f, std::size_t payload_bytes, std::vector<std::uint8_t>& b) {
  b.assign(kIcmpHeader + std::max(payload_bytes, kPayloadMin), 0);
  b[0] = ipv6 ? kV6EchoRequest : kV4EchoRequest;
  put16(&b[4], f.ident);
  put16(&b[6], f.seq);
  std::uint8_t* d = &b[kIcmpHeader];
  put_be(d, f.cookie);
  put_be(d + 8, f.slot);
  put_be(d + 12, f.generation);
  put_be(d + 16, f.send_ns);
  for (std::size_t i = kPayloadMin; i < b.size() - kIcmpHeader; ++i) d[i] = static_cast<std::uint8_t>(i);
  if (!ipv6) put16(&b[2], checksum(b.data(), b.size()));
}

bool peek_echo_slot(bool ipv6, const std::uint8_t* p, std::size_t len, std::uint32_t& slot,
                    std::uint16_t& seq) {
  if (len < kIcmpHeader + kPayloadMin || p[0] != (ipv6 ? kV6EchoReply : kV4EchoReply)) return false;
  seq = get16(p + 6);
  slot = get_be<std::uint32_t>(p + kIcmpHeader + 8);
  return true;
}

std::size_t ipv4_header_len(const std::uint8_t* data, std::size_t len) {
  if (len < 20 || (data[0] >> 4) != 4) return 0;
  const std::size_t ihl = static_cast<std::size_t>(data[0] & 0x0f) * 4;
  return ihl >= 20 && ihl <= len ? ihl : 0;
}

ParsedIcmp parse_icmp(bool ipv6, const std::uint8_t* p, std::size_t len) {
  ParsedIcmp r;
  if (len < kIcmpHeader) {
    r.kind = IcmpKind::Truncated;
    return r;
  }
  const std::uint8_t type = p[0];
  if (type == (ipv6 ? kV6EchoReply : kV4EchoReply)) {
    r.kind = IcmpKind::EchoReply;
    r.has_fields = decode_echo(p, len, r.fields);
    if (!r.has_fields) {
      r.kind = IcmpKind::Truncated;
      r.fields.ident = get16(p + 4);
    }
    return r;
  }
  if (type == (ipv6 ? kV6Unreach : kV4Unreach))
    r.kind = IcmpKind::Unreachable;
  else if (type == (ipv6 ? kV6TimeExceeded : kV4TimeExceeded))
    r.kind = IcmpKind::TimeExceeded;
  else
    return r;
  // The error quotes the request: its IP header, then our echo header and payload.
  const std::uint8_t* q = p + kIcmpHeader;
  std::size_t qlen = len - kIcmpHeader;
  if (ipv6) {
    if (qlen < 40 || (q[0] >> 4) != 6 || q[6] != IPPROTO_ICMPV6) return r;
    auto* a = reinterpret_cast<sockaddr_in6*>(&r.quoted_dst);
    a->sin6_family = AF_INET6;
    std::memcpy(&a->sin6_addr, q + 24, 16);
    q += 40;
    qlen -= 40;
  } else {
    const std::size_t ihl = ipv4_header_len(q, qlen);
    if (!ihl || q[9] != IPPROTO_ICMP) return r;
    auto* a = reinterpret_cast<sockaddr_in*>(&r.quoted_dst);
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr, q + 16, 4);
    q += ihl;
    qlen -= ihl;
  }
  if (qlen >= kIcmpHeader && q[0] == (ipv6 ? kV6EchoRequest : kV4EchoRequest)) {
    // Every router quotes our 8-byte header (RFC 792); the payload only some.
    r.has_header = true;
    r.fields.ident = get16(q + 4);
    r.fields.seq = get16(q + 6);
    r.has_fields = decode_echo(q, qlen, r.fields);
  }
  return r;
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  if (a.ss_family == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                       &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, 16) == 0;
  return false;
}

int bind_icmp_ident(int fd, int af, std::uint16_t& ident) {
  sockaddr_storage a{};
  a.ss_family = static_cast<sa_family_t>(af);
  socklen_t al = af == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), al) != 0) return errno;
  al = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al) != 0) return errno;
  ident = ntohs(af == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(a).sin6_port
                               : reinterpret_cast<sockaddr_in&>(a).sin_port);
  return ident ? 0 : EADDRNOTAVAIL;
}

}  // namespace siteprobe::probes
