// The web config file (--web.config.file), in the format of Prometheus' exporter-toolkit:
//
//   tls_server_config:
//     cert_file: server.crt           # both required for TLS; paths relative to this file
//     key_file: server.key
//     client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
//     client_ca_file: clients-ca.crt
//     min_version: TLS12              # TLS10..TLS13, default TLS12; max_version likewise
//     cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]  # default: forward-secret AEAD only
//     client_allowed_sans: [prometheus.example.org]           # with RequireAndVerifyClientCert
//   basic_auth_users:
//     prometheus: $2y$10$...          # bcrypt hashes
//
// Read once at start; unknown keys and exporter-toolkit keys siteprobe does not implement are
// errors. TLS files are loaded into a throwaway OpenSSL context at load time, so a wrong path, a
// key that does not match its certificate or an unreadable CA file is reported before binding;
// the GnuTLS priority string the server will use is checked then too.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace siteprobe {

struct WebConfig {
  std::string cert_file, key_file, client_ca_file;  // resolved paths; cert_file empty = plain HTTP
  std::string client_auth_type = "NoClientCert";
  int min_version = 0, max_version = 0;          // OpenSSL TLS1_x_VERSION, 0 = no limit
  std::vector<std::string> cipher_suites;        // Go names; empty = forward-secret AEAD suites only
  std::vector<std::string> client_allowed_sans;  // DNS, IP, e-mail or URI; empty = any
  std::map<std::string, std::string> users;      // user -> bcrypt hash; empty = no authentication
  std::vector<std::string> allowed_hosts;        // --web.allowed-hosts; empty = any Host header
  bool tls() const { return !cert_file.empty(); }
};

struct WebConfigResult {
  std::optional<WebConfig> config;
  std::vector<std::string> errors;  // "FILE:LINE:COL: path: message", or "FILE: message"
};

WebConfigResult load_web_config(const std::string& file);

// Applies the TLS settings to an OpenSSL SSL_CTX (void* keeps OpenSSL out of this header).
// Returns "" or what is wrong.
std::string configure_tls(void* ssl_ctx, const WebConfig& c);

// The GnuTLS priority string for `c`'s versions and cipher suites.
std::string tls_priorities(const WebConfig& c);

// True if `password` matches the bcrypt `hash` ($2a$, $2b$ or $2y$). Thread-safe; uses the heap,
// not the stack of the HTTP threads.
bool bcrypt_matches(const std::string& hash, const std::string& password);

}  // namespace siteprobe
