// Socket address helpers shared by the probes and the daemon.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>

namespace siteprobe::net {

// A literal IPv4 or IPv6 address (no port, no brackets), or nullopt (e.g. a DNS name).
std::optional<sockaddr_storage> parse_ip(const std::string& text);
// The address without its port ("192.0.2.1", "2001:db8::1"); "" for another family. `port`, if
// given, receives the port.
std::string ip_text(const sockaddr_storage& a, int* port = nullptr);
// Sets the port of an IPv4 or IPv6 address; other families are left alone.
void set_port(sockaddr_storage& a, int port);

}  // namespace siteprobe::net
