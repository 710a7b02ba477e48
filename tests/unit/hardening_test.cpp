#include "daemon/hardening.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "probes/registry.h"

using siteprobe::Config;
using siteprobe::inline_secret_warning;

namespace {

// An inventory file with this mode; its content does not matter, only its mode is read.
std::string file_with_mode(mode_t mode) {
  std::string path = "/tmp/siteprobe-unit-hardening-" + std::to_string(getpid()) + ".yml";
  std::ofstream(path) << "sites: []\n";
  REQUIRE(chmod(path.c_str(), mode) == 0);
  return path;
}

Config with_profile(const std::string& file, bool inline_secret) {
  Config c;
  c.file = file;
  c.auth["ro"].name = "ro";
  c.auth["ro"].community = "s3cr3t-community";
  c.auth["ro"].inline_secret = inline_secret;
  return c;
}

}  // namespace

TEST_CASE("inline secrets in a world-readable inventory are warned about, without the secret") {
  const auto path = file_with_mode(0644);
  const auto w = inline_secret_warning(with_profile(path, true));
  CHECK_THAT(w, Catch::Contains(path + ": warning:") && Catch::Contains("auth ro") &&
                    Catch::Contains("mode 0644") && Catch::Contains("chmod 640") &&
                    Catch::Contains("chgrp siteprobe"));
  CHECK_THAT(w, !Catch::Contains("s3cr3t"));
}

TEST_CASE("no inline-secret warning for mode 0640, or for secrets read from files") {
  CHECK(inline_secret_warning(with_profile(file_with_mode(0640), true)).empty());
  CHECK(inline_secret_warning(with_profile(file_with_mode(0644), false)).empty());
  CHECK(inline_secret_warning(Config{}).empty());
}

TEST_CASE("the parser records which auth profiles hold an inline secret") {
  const std::string dir = "/tmp/siteprobe-unit-hardening-" + std::to_string(getpid());
  mkdir(dir.c_str(), 0700);
  std::ofstream(dir + "/pass") << "from-a-file-123\n";
  auto r = siteprobe::probes::parse_inventory(R"(
auth:
  inl: {version: 2c, community: public}
  v3i: {version: 3, username: u, security_level: authPriv, auth_protocol: SHA, auth_passphrase_file: pass,
        priv_protocol: AES, priv_passphrase: inline-priv-123}
  file: {version: 3, username: u, security_level: authNoPriv, auth_protocol: SHA, auth_passphrase_file: pass}
sites:
  - {id: bk, name: Bắc Kạn, level: province}
)",
                                              "t.yml", dir);
  INFO((r.errors.empty() ? std::string() : r.errors[0]));
  REQUIRE(r.config);
  CHECK(r.config->auth.at("inl").inline_secret);
  CHECK(r.config->auth.at("v3i").inline_secret);
  CHECK_FALSE(r.config->auth.at("file").inline_secret);
}
