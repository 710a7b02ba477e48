#include "util/net.h"

#include <catch2/catch.hpp>

using namespace siteprobe;

TEST_CASE("net: literal addresses parse once, print back, and take a port") {
  auto v4 = net::parse_ip("127.0.0.9");
  REQUIRE(v4);
  CHECK(v4->ss_family == AF_INET);
  net::set_port(*v4, 5060);
  int port = 0;
  CHECK(net::ip_text(*v4, &port) == "127.0.0.9");
  CHECK(port == 5060);
  auto v6 = net::parse_ip("::1");
  REQUIRE(v6);
  CHECK(v6->ss_family == AF_INET6);
  net::set_port(*v6, 1720);
  CHECK(net::ip_text(*v6, &port) == "::1");
  CHECK(port == 1720);
  // DNS names, ports and brackets are not literal addresses.
  for (const char* s : {"router.bk.example", "127.0.0.1:80", "[::1]", "", "127.1", " 127.0.0.1"})
    CHECK_FALSE(net::parse_ip(s));
  CHECK(net::ip_text(sockaddr_storage{}).empty());
}
