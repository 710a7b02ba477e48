#include "daemon/web_config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

using namespace siteprobe;

namespace {

// "correct horse", bcrypt cost 5 (python3 crypt.crypt with METHOD_BLOWFISH).
const std::string kHash = "$2b$05$A1U3RyuOrqrjxbgaWuikSOngtp2tO4WY5rP7hEvZSeeWLn/PSrSqi";

WebConfigResult load(const std::string& text) {
  const std::string path = "/tmp/siteprobe-web-test." + std::to_string(getpid()) + ".yml";
  std::ofstream(path) << text;
  auto r = load_web_config(path);
  unlink(path.c_str());
  for (auto& e : r.errors) e = e.substr(e.find(".yml") + 4);  // drop the temp path
  return r;
}

}  // namespace

TEST_CASE("bcrypt hashes are checked with libcrypt") {
  CHECK(bcrypt_matches(kHash, "correct horse"));
  CHECK_FALSE(bcrypt_matches(kHash, "correct horse "));
  CHECK_FALSE(bcrypt_matches(kHash, ""));
  // htpasswd -B writes $2y$, which is the same algorithm.
  CHECK(bcrypt_matches("$2y$" + kHash.substr(4), "correct horse"));
  CHECK_FALSE(bcrypt_matches("$1$abc$def", "correct horse"));
  CHECK_FALSE(bcrypt_matches(kHash.substr(0, 59), "correct horse"));
  CHECK_FALSE(bcrypt_matches(kHash, std::string("correct horse\0x", 15)));
}

TEST_CASE("an empty web config means plain HTTP without authentication") {
  auto r = load("");
  REQUIRE(r.config);
  CHECK_FALSE(r.config->tls());
  CHECK(r.config->users.empty());
}

TEST_CASE("basic_auth_users") {
  auto r = load("basic_auth_users:\n  alice: " + kHash + "\n  bob: '" + kHash + "'\n");
  REQUIRE(r.config);
  CHECK(r.config->users.size() == 2);
  CHECK(r.config->users.at("alice") == kHash);
}

TEST_CASE("invalid web configs: every error, with its line") {
  struct Case {
    std::string text, error;
  };
  const Case cases[] = {
      {"tls_server_config: [\n", ":2:1: end of sequence flow not found"},
      {"tls_config: {}\n", ":1:1: tls_config: unknown key (allowed: basic_auth_users, tls_server_config)"},
      {"http_server_config: {http2: false}\n", ":1:1: http_server_config: not supported by siteprobe"},
      {"basic_auth_users: [alice]\n",
       ":1:19: basic_auth_users: must be a mapping of user name to bcrypt hash"},
      {"basic_auth_users:\n  alice: secret\n", ":2:10: basic_auth_users.alice: not a bcrypt hash"},
      {"basic_auth_users:\n  alice: " + kHash + "\n  alice: " + kHash + "\n",
       ":3:3: basic_auth_users.alice: duplicate user"},
      {"basic_auth_users:\n  'a:b': " + kHash + "\n", ":2:3: basic_auth_users.a:b: user names must"},
      {"tls_server_config:\n  cert_file: a.crt\n", ":2:3: tls_server_config: missing key_file"},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  cipher_suites: [x]\n",
       ":4:19: tls_server_config.cipher_suites[0]: unknown or insecure suite \"x\""},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS14\n",
       ":4:16: tls_server_config.min_version: unknown \"TLS14\" (allowed: TLS10, TLS11, TLS12, TLS13)"},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS13\n  max_version: "
       "TLS12\n",
       ":2:3: tls_server_config: min_version is above max_version"},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: RequireClientCert\n",
       ":4:21: tls_server_config.client_auth_type: unknown \"RequireClientCert\""},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: "
       "RequireAndVerifyClientCert\n",
       ":2:3: tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file"},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_ca_file: ca.crt\n",
       ":4:19: tls_server_config.client_ca_file: client_ca_file given but client_auth_type is NoClientCert"},
      {"tls_server_config:\n  cert_file: /nonexistent/a.crt\n  key_file: a.key\n",
       ":2:3: tls_server_config: cannot load cert_file \"/nonexistent/a.crt\""},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = load(c.text);
    CHECK_FALSE(r.config);
    REQUIRE(r.errors.size() >= 1);
    CHECK_THAT(r.errors[0], Catch::Matchers::StartsWith(c.error));
  }
}

TEST_CASE("all errors of a web config are listed") {
  auto r = load(
      "tls_server_config:\n  cert_file: a.crt\n  min_version: TLS9\nbasic_auth_users:\n  bob: x\nextra: 1\n");
  CHECK_FALSE(r.config);
  CHECK(r.errors.size() == 3);
}
