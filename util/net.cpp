#include "util/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace siteprobe::net {

std::optional<sockaddr_storage> parse_ip(const std::string& text) {
  sockaddr_storage ss{};
  auto& v4 = reinterpret_cast<sockaddr_in&>(ss);
  auto& v6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    ss.ss_family = AF_INET;
    return ss;
  }
  if (inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    ss.ss_family = AF_INET6;
    return ss;
  }
  return std::nullopt;
}

std::string ip_text(const sockaddr_storage& a, int* port) {
  char b[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    if (!inet_ntop(AF_INET, &v4.sin_addr, b, sizeof b)) b[0] = '\0';
    if (port) *port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    if (!inet_ntop(AF_INET6, &v6.sin6_addr, b, sizeof b)) b[0] = '\0';
    if (port) *port = ntohs(v6.sin6_port);
  }
  return b;
}

void set_port(sockaddr_storage& a, int port) {
  const auto p = htons(static_cast<std::uint16_t>(port));
  if (a.ss_family == AF_INET) reinterpret_cast<sockaddr_in&>(a).sin_port = p;
  if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(a).sin6_port = p;
}

}  // namespace siteprobe::net
