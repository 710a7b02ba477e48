// A blocking HTTP(S) GET for `siteprobe readiness`: plain HTTP or TLS (GnuTLS), with a CA file, a
// client certificate and basic auth, so it reaches a daemon set up as docs/install.md recommends.
#pragma once

#include <string>

namespace siteprobe {

struct HttpGet {
  std::string url;        // http://HOST:PORT[/...] or https://…; IPv6 as [ADDR]
  std::string ca_file;    // https: trusted CAs (or the server's own certificate); "" = system CAs
  std::string cert_file;  // https: client certificate and key, for client_auth_type Require…
  std::string key_file;
  std::string username, password;  // basic auth, if username is set
  int timeout_s = 10;
};

// GETs `path` on the server of `g.url`. Returns the HTTP status with `body` set, or 0 with `err`
// saying what failed (connect, certificate, handshake, not HTTP).
int http_get(const HttpGet& g, const std::string& path, std::string& body, std::string& err);

}  // namespace siteprobe
