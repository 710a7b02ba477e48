// The HTTP layer's pure parts: rate limiter, credential cache, the TLS keys of the web config.
#include "daemon/http_guard.h"

#include <gnutls/gnutls.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "daemon/web_config.h"

using namespace siteprobe;
using std::chrono::seconds;

TEST_CASE("rate limiter: a burst, then one token per period, per key") {
  RateLimiter r(3, seconds(10));
  const auto t0 = GuardClock::time_point{};
  for (int i = 0; i < 3; ++i) CHECK(r.take("a", t0));
  CHECK_FALSE(r.take("a", t0));
  CHECK(r.retry_after("a", t0) == 10);
  CHECK(r.take("b", t0));  // another client has its own bucket
  CHECK_FALSE(r.take("a", t0 + seconds(9)));
  CHECK(r.retry_after("a", t0 + seconds(9)) == 1);
  CHECK(r.take("a", t0 + seconds(10)));
  CHECK_FALSE(r.take("a", t0 + seconds(10)));
  for (int i = 0; i < 3; ++i) CHECK(r.take("a", t0 + seconds(1000)));  // refills to the burst, not past it
  CHECK_FALSE(r.take("a", t0 + seconds(1000)));
  CHECK(r.retry_after("never seen", t0) == 0);
}

TEST_CASE("rate limiter: a full table forgets refilled buckets, else refuses new keys") {
  RateLimiter r(1, seconds(10), 2);
  const auto t0 = GuardClock::time_point{};
  CHECK(r.take("a", t0));
  CHECK(r.take("b", t0));
  CHECK_FALSE(r.take("c", t0));          // a and b are still counting down
  CHECK(r.take("c", t0 + seconds(10)));  // both refilled: forgotten
  CHECK_FALSE(r.take("c", t0 + seconds(10)));
}

TEST_CASE("expiring set: entries live for the ttl; a full set drops expired ones, then all") {
  ExpiringSet s(seconds(60), 2);
  const auto t0 = GuardClock::time_point{};
  s.insert("x", t0);
  CHECK(s.contains("x", t0 + seconds(59)));
  CHECK_FALSE(s.contains("x", t0 + seconds(60)));
  CHECK_FALSE(s.contains("y", t0));
  s.insert("y", t0 + seconds(30));
  s.insert("z", t0 + seconds(61));  // full: x has expired and goes
  CHECK(s.size() == 2);
  CHECK(s.contains("y", t0 + seconds(61)));
  s.insert("w", t0 + seconds(62));  // full, nothing expired: cleared
  CHECK(s.size() == 1);
  CHECK(s.contains("w", t0 + seconds(62)));
}

namespace {

WebConfigResult load(const std::string& text) {
  const std::string path = "/tmp/siteprobe-http-test." + std::to_string(getpid()) + ".yml";
  std::ofstream(path) << text;
  auto r = load_web_config(path);
  unlink(path.c_str());
  for (auto& e : r.errors) e = e.substr(e.find(".yml") + 4);
  return r;
}

bool gnutls_accepts(const std::string& prio) {
  gnutls_priority_t p;
  if (gnutls_priority_init(&p, prio.c_str(), nullptr) < 0) return false;
  gnutls_priority_deinit(p);
  return true;
}

}  // namespace

TEST_CASE("cipher_suites and client_allowed_sans: errors with their place") {
  const std::string tls = "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n";
  struct Case {
    std::string text, error;
  };
  const Case cases[] = {
      {tls + "  cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
       ":4:18: tls_server_config.cipher_suites: must be a non-empty list of strings"},
      {tls + "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_RC4_128_SHA]\n",
       ":4:58: tls_server_config.cipher_suites[1]: unknown or insecure suite \"TLS_RSA_WITH_RC4_128_SHA\""},
      {tls + "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_256_CBC_SHA]\n",
       ":4:18: tls_server_config.cipher_suites: GnuTLS would also enable TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
      {tls + "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n",
       ":4:18: tls_server_config.cipher_suites: TLS 1.3 needs at least one AEAD"},
      {tls + "  client_allowed_sans: [prometheus]\n",
       ":4:24: tls_server_config.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert"},
      {tls + "  client_allowed_sans: []\n",
       ":4:24: tls_server_config.client_allowed_sans: must be a non-empty list of strings"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = load(c.text);
    CHECK_FALSE(r.config);
    REQUIRE(r.errors.size() >= 1);
    CHECK_THAT(r.errors[0], Catch::Matchers::StartsWith(c.error));
  }
}

TEST_CASE("TLS priorities: forward-secret AEAD by default; the versions and suites asked for") {
  WebConfig c;
  c.min_version = TLS1_2_VERSION;
  const std::string def = tls_priorities(c);
  CHECK(def ==
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-CIPHER-ALL:+AES-128-GCM:"
        "+AES-"
        "256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1");
  CHECK(gnutls_accepts(def));
  c.min_version = TLS1_3_VERSION;
  CHECK(tls_priorities(c).rfind("NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX", 0) == 0);
  c.min_version = TLS1_2_VERSION;
  c.max_version = TLS1_2_VERSION;
  c.cipher_suites = {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"};
  const std::string cbc = tls_priorities(c);
  CHECK(cbc ==
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:-MAC-ALL:+"
        "SHA1:-SIGN-"
        "RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1");
  CHECK(gnutls_accepts(cbc));
}

TEST_CASE("basic credentials: strict base64 with a colon, never a crash") {
  CHECK(basic_credentials("Basic dXNlcjpwYXNz") == std::optional<std::string>("user:pass"));
  CHECK(basic_credentials("basic dXNlcjpwYXNz  ") == std::optional<std::string>("user:pass"));
  CHECK(basic_credentials("Basic dTpw") == std::optional<std::string>("u:p"));        // no padding
  CHECK(basic_credentials("Basic dTpwcQ==") == std::optional<std::string>("u:pq"));   // two '='
  CHECK(basic_credentials("Basic dTpwcXI=") == std::optional<std::string>("u:pqr"));  // one '='
  const std::string big = "Basic " + std::string(10 * 1024UL, 'A');
  for (const char* bad :
       {"Basic ====", "Basic =", "Basic A===", "Basic !!!!", "Basic", "Basic ", "Bearer x", "Basic dXNl=jpw",
        "Basic dXNlcg==" /* no colon */, "Basic dXNlcjpwYXN", big.c_str()}) {
    INFO(std::string(bad).substr(0, 40));
    CHECK_FALSE(basic_credentials(bad));
  }
  CHECK_FALSE(basic_credentials(nullptr));
}

TEST_CASE("in flight: at most max slots; a slot is given back when destroyed") {
  InFlight f(2);
  {
    InFlight::Slot a = f.acquire(), b = f.acquire();
    CHECK(a);
    CHECK(b);
    CHECK(f.count() == 2);
    CHECK_FALSE(f.acquire());  // full: the third /metrics answer is a 503
    InFlight::Slot moved(std::move(a));
    CHECK(moved);
    CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move)
    CHECK(f.count() == 2);
  }
  CHECK(f.count() == 0);
  CHECK(f.acquire());
}

TEST_CASE("expiring set: a hit keeps a key for another ttl") {
  ExpiringSet s(seconds(60), 4);
  const auto t0 = GuardClock::time_point{};
  s.insert("x", t0);
  CHECK(s.hit("x", t0 + seconds(50)));
  CHECK(s.contains("x", t0 + seconds(100)));  // refreshed at 50 s: lives until 110 s
  CHECK_FALSE(s.contains("x", t0 + seconds(110)));
  CHECK_FALSE(s.hit("x", t0 + seconds(110)));
  CHECK_FALSE(s.hit("y", t0));
}

TEST_CASE(
    "take_both: a client's token only with the global one, and the global one only for a client with "
    "tokens") {
  const auto t0 = GuardClock::time_point{};
  RateLimiter per(1, seconds(10)), global(2, seconds(10));
  CHECK(take_both(per, "a", global, t0));
  for (int i = 0; i < 5; ++i) CHECK_FALSE(take_both(per, "a", global, t0));  // a is out: global untouched
  CHECK(global.available("", t0));
  CHECK(take_both(per, "b", global, t0));
  CHECK_FALSE(take_both(per, "c", global, t0));  // global is out: c keeps its token
  CHECK(per.available("c", t0));
  CHECK(take_both(per, "c", global, t0 + seconds(10)));
}

TEST_CASE("client_key: IPv4 as is, IPv6 by /64") {
  CHECK(client_key("192.0.2.7") == "192.0.2.7");
  CHECK(client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64");
  CHECK(client_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64");
  CHECK(client_key("::1") == "::/64");
  CHECK(client_key("?") == "?");
}
