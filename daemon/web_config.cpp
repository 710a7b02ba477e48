#include "daemon/web_config.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <gnutls/gnutls.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>

namespace siteprobe {
namespace {

const std::map<std::string, int> kVersions = {
    {"TLS10", TLS1_VERSION}, {"TLS11", TLS1_1_VERSION}, {"TLS12", TLS1_2_VERSION}, {"TLS13", TLS1_3_VERSION}};
const std::set<std::string> kClientAuth = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                           "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"};

// TLS 1.2 suites by their Go (exporter-toolkit) names, as GnuTLS key exchange, cipher and MAC.
struct Suite {
  const char *kx, *cipher, *mac;
};
const std::map<std::string, Suite> kSuites = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", {"RSA", "AES-128-CBC", "SHA1"}},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", {"RSA", "AES-256-CBC", "SHA1"}},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", {"RSA", "AES-128-GCM", "AEAD"}},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", {"RSA", "AES-256-GCM", "AEAD"}},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", {"ECDHE-ECDSA", "AES-128-CBC", "SHA1"}},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", {"ECDHE-ECDSA", "AES-256-CBC", "SHA1"}},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", {"ECDHE-RSA", "AES-128-CBC", "SHA1"}},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", {"ECDHE-RSA", "AES-256-CBC", "SHA1"}},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", {"ECDHE-ECDSA", "AES-128-GCM", "AEAD"}},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", {"ECDHE-ECDSA", "AES-256-GCM", "AEAD"}},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", {"ECDHE-RSA", "AES-128-GCM", "AEAD"}},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", {"ECDHE-RSA", "AES-256-GCM", "AEAD"}},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", {"ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"}},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", {"ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"}},
};
// The default, as Go's: forward-secret AEAD suites only.
const std::vector<std::string> kDefaultSuites = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",       "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",       "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"};

// GnuTLS enables every combination of the key exchanges, ciphers and MACs it is given: returns
// a suite that the list `names` would enable without naming it, or "".
std::string unlisted_suite(const std::vector<std::string>& names) {
  std::set<std::string> kx, cipher, mac;
  for (const auto& n : names) {
    const Suite& s = kSuites.at(n);
    kx.insert(s.kx), cipher.insert(s.cipher), mac.insert(s.mac);
  }
  for (const auto& [name, s] : kSuites)
    if (kx.count(s.kx) && cipher.count(s.cipher) && mac.count(s.mac) &&
        std::find(names.begin(), names.end(), name) == names.end())
      return name;
  return "";
}

// "192.0.2.1" and "2001:db8::1" in their canonical text form; other SANs as they are.
std::string canonical_san(const std::string& san) {
  unsigned char buf[16];
  char text[INET6_ADDRSTRLEN];
  for (int af : {AF_INET, AF_INET6})
    if (inet_pton(af, san.c_str(), buf) == 1 && inet_ntop(af, buf, text, sizeof text)) return text;
  return san;
}

std::string ssl_error() {
  char buf[256] = "unknown error";
  if (const unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool is_bcrypt(const std::string& h) {
  return h.size() == 60 && h[0] == '$' && h[1] == '2' && std::strchr("aby", h[2]) && h[3] == '$';
}

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {
    const auto slash = file_.rfind('/');
    if (slash != std::string::npos) dir_ = file_.substr(0, slash + 1);
  }

  WebConfigResult run() {
    YAML::Node root;
    try {
      root = YAML::LoadFile(file_);
    } catch (const YAML::BadFile&) {
      return {std::nullopt, {file_ + ": cannot read web config file (" + std::strerror(errno) + ")"}};
    } catch (const YAML::Exception& e) {
      return {std::nullopt,
              {file_ + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
               ": " + e.msg}};
    }
    if (root.IsNull()) return {c_, {}};  // an empty file: plain HTTP, no authentication
    if (keys(root, "", {"tls_server_config", "basic_auth_users"}, {"http_server_config"})) {
      if (root["tls_server_config"]) tls(root["tls_server_config"]);
      if (root["basic_auth_users"]) users(root["basic_auth_users"]);
    }
    if (!errors_.empty()) return {std::nullopt, errors_};
    return {c_, {}};
  }

 private:
  std::string file_, dir_;
  WebConfig c_;
  std::vector<std::string> errors_;

  void error(const YAML::Node& n, const std::string& path, const std::string& msg) {
    const auto m = n.Mark();
    errors_.push_back(file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " +
                      (path.empty() ? "(top level)" : path) + ": " + msg);
  }

  // Checks that `n` is a mapping with only `allowed` keys; exporter-toolkit keys siteprobe does
  // not implement get their own message. Returns false if `n` is not a mapping.
  bool keys(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed,
            const std::set<std::string>& unsupported) {
    if (!n.IsMap()) {
      error(n, path, "must be a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      const std::string k = kv.first.Scalar(), kp = path.empty() ? k : path + "." + k;
      if (unsupported.count(k))
        error(kv.first, kp, "not supported by siteprobe");
      else if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        error(kv.first, kp, "unknown key (allowed: " + list + ")");
      } else if (!seen.insert(k).second)
        error(kv.first, kp, "duplicate key");
    }
    return true;
  }

  std::string str(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar() && !n.Scalar().empty()) return n.Scalar();
    error(n, path, "must be a non-empty string");
    return "";
  }

  std::vector<std::string> strs(const YAML::Node& n, const std::string& path) {
    std::vector<std::string> out;
    if (!n.IsSequence() || n.size() == 0) {
      error(n, path, "must be a non-empty list of strings");
      return out;
    }
    for (std::size_t i = 0; i < n.size(); ++i) out.push_back(str(n[i], path + "[" + std::to_string(i) + "]"));
    return out;
  }

  std::string path_of(const YAML::Node& n, const std::string& path) {
    std::string p = str(n, path);
    return p.empty() || p[0] == '/' ? p : dir_ + p;
  }

  void tls(const YAML::Node& t) {
    const std::string p = "tls_server_config";
    if (!keys(t, p,
              {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
               "cipher_suites", "client_allowed_sans"},
              {"cert", "key", "client_ca", "curve_preferences", "prefer_server_cipher_suites"}))
      return;
    for (const char* k : {"cert_file", "key_file"})
      if (!t[k]) error(t, p, std::string("missing ") + k);
    if (!t["cert_file"] || !t["key_file"]) return;
    c_.cert_file = path_of(t["cert_file"], p + ".cert_file");
    c_.key_file = path_of(t["key_file"], p + ".key_file");
    if (t["client_auth_type"]) {
      c_.client_auth_type = str(t["client_auth_type"], p + ".client_auth_type");
      if (!c_.client_auth_type.empty() && !kClientAuth.count(c_.client_auth_type))
        error(t["client_auth_type"], p + ".client_auth_type",
              "unknown \"" + c_.client_auth_type +
                  "\" (allowed: NoClientCert, RequestClientCert, RequireAnyClientCert, "
                  "VerifyClientCertIfGiven, RequireAndVerifyClientCert)");
    }
    const bool verifies = c_.client_auth_type.find("Verify") != std::string::npos;
    if (t["client_ca_file"]) {
      c_.client_ca_file = path_of(t["client_ca_file"], p + ".client_ca_file");
      if (c_.client_auth_type == "NoClientCert")
        error(t["client_ca_file"], p + ".client_ca_file",
              "client_ca_file given but client_auth_type is NoClientCert");
    } else if (verifies) {
      error(t, p, "client_auth_type " + c_.client_auth_type + " needs client_ca_file");
    }
    c_.min_version = TLS1_2_VERSION;  // exporter-toolkit's default
    for (auto [k, v] : {std::pair{"min_version", &c_.min_version}, {"max_version", &c_.max_version}}) {
      if (!t[k]) continue;
      const std::string s = str(t[k], p + "." + k);
      if (auto it = kVersions.find(s); it != kVersions.end())
        *v = it->second;
      else if (!s.empty())
        error(t[k], p + "." + k, "unknown \"" + s + "\" (allowed: TLS10, TLS11, TLS12, TLS13)");
    }
    if (c_.max_version && c_.min_version > c_.max_version) error(t, p, "min_version is above max_version");
    if (const auto& n = t["cipher_suites"]) suites(n, p + ".cipher_suites");
    if (const auto& n = t["client_allowed_sans"]) {
      for (const auto& san : strs(n, p + ".client_allowed_sans"))
        c_.client_allowed_sans.push_back(canonical_san(san));
      if (c_.client_auth_type != "RequireAndVerifyClientCert")
        error(n, p + ".client_allowed_sans", "needs client_auth_type RequireAndVerifyClientCert");
    }
    if (!errors_.empty()) return;
    gnutls_priority_t prio;
    const char* where = nullptr;
    const std::string prios = tls_priorities(c_);
    if (const int e = gnutls_priority_init(&prio, prios.c_str(), &where); e < 0)
      return error(t, p,
                   "GnuTLS rejects the TLS settings (\"" + prios + "\" at \"" + (where ? where : "") +
                       "\"): " + gnutls_strerror(e));
    gnutls_priority_deinit(prio);
    // Load everything now, so that bad files are reported before the port is bound.
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (auto e = configure_tls(ctx.get(), c_); !e.empty()) return error(t, p, e);
    // The server itself runs GnuTLS (libmicrohttpd): it must read the files as well.
    gnutls_certificate_credentials_t cred;
    if (const int e = gnutls_certificate_allocate_credentials(&cred); e < 0)
      return error(t, p, std::string("GnuTLS cannot allocate credentials: ") + gnutls_strerror(e));
    const int e = gnutls_certificate_set_x509_key_file(cred, c_.cert_file.c_str(), c_.key_file.c_str(),
                                                       GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    if (e < 0) error(t, p, std::string("GnuTLS cannot load cert_file and key_file: ") + gnutls_strerror(e));
  }

  void suites(const YAML::Node& n, const std::string& path) {
    const auto names = strs(n, path);
    for (std::size_t i = 0; i < names.size(); ++i)
      if (!names[i].empty() && !kSuites.count(names[i])) {
        std::string list;
        for (const auto& kv : kSuites) list += (list.empty() ? "" : ", ") + kv.first;
        return error(n[i], path + "[" + std::to_string(i) + "]",
                     "unknown or insecure suite \"" + names[i] + "\" (allowed: " + list + ")");
      }
    if (names.empty() || std::count(names.begin(), names.end(), "")) return;
    if (const auto extra = unlisted_suite(names); !extra.empty())
      return error(n, path,
                   "GnuTLS would also enable " + extra +
                       " (it combines the key exchanges, ciphers and MACs of the listed suites); list it too "
                       "or drop the suites that share its parts");
    // TLS 1.3 uses the AEAD ciphers of the list (Go ignores the list for TLS 1.3).
    const bool aead = std::any_of(names.begin(), names.end(),
                                  [](auto& s) { return kSuites.at(s).mac == std::string("AEAD"); });
    if (!aead && c_.max_version != TLS1_2_VERSION && c_.max_version != TLS1_1_VERSION &&
        c_.max_version != TLS1_VERSION)
      return error(n, path,
                   "TLS 1.3 needs at least one AEAD (GCM or CHACHA20_POLY1305) suite; add one or set "
                   "max_version: TLS12");
    c_.cipher_suites = names;
  }

  void users(const YAML::Node& u) {
    const std::string p = "basic_auth_users";
    if (!u.IsMap()) return error(u, p, "must be a mapping of user name to bcrypt hash");
    for (const auto& kv : u) {
      const std::string user = kv.first.Scalar(), kp = p + "." + user;
      const std::string hash = str(kv.second, kp);
      if (user.empty() || user.find(':') != std::string::npos)
        error(kv.first, kp, "user names must be non-empty and must not contain ':'");
      else if (!hash.empty() && !is_bcrypt(hash))
        error(kv.second, kp,
              "not a bcrypt hash (want $2a$, $2b$ or $2y$ and 60 characters; make one with "
              "htpasswd -nBC 10 USER)");
      else if (!c_.users.emplace(user, hash).second)
        error(kv.first, kp, "duplicate user");
    }
  }
};

}  // namespace

WebConfigResult load_web_config(const std::string& file) {
  return Parser(file).run();
}

std::string configure_tls(void* ssl_ctx, const WebConfig& c) {
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, c.cert_file.c_str()) != 1)
    return "cannot load cert_file \"" + c.cert_file + "\": " + ssl_error();
  std::string mismatch = "key_file \"" + c.key_file + "\" does not match cert_file \"" + c.cert_file + "\"";
  if (SSL_CTX_use_PrivateKey_file(ctx, c.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH)
      return "cannot load key_file \"" + c.key_file + "\": " + ssl_error();
    ERR_clear_error();
    return mismatch;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {  // e.g. an EC key for an RSA certificate
    ERR_clear_error();
    return mismatch;
  }
  if (!c.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, c.client_ca_file.c_str(), nullptr) != 1)
      return "cannot load client_ca_file \"" + c.client_ca_file + "\": " + ssl_error();
    // Tell clients which CAs are acceptable.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx, names);
  }
  SSL_CTX_set_min_proto_version(ctx, c.min_version);
  SSL_CTX_set_max_proto_version(ctx, c.max_version);
  // Request*/RequireAny* ask for a certificate but accept any; *Verify* check it against the CA.
  auto accept_any = [](int, X509_STORE_CTX*) { return 1; };
  const std::string& a = c.client_auth_type;
  if (a == "RequestClientCert")
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
  else if (a == "RequireAnyClientCert")
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
  else if (a == "VerifyClientCertIfGiven")
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  else if (a == "RequireAndVerifyClientCert")
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  else
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  return "";
}

std::string tls_priorities(const WebConfig& c) {
  // Start from GnuTLS' NORMAL (groups, signatures), then replace versions, key exchanges, ciphers
  // and MACs; SHA-1 signatures go too.
  std::string p = "NORMAL:-VERS-ALL";
  const std::pair<int, const char*> versions[] = {{TLS1_VERSION, "TLS1.0"},
                                                  {TLS1_1_VERSION, "TLS1.1"},
                                                  {TLS1_2_VERSION, "TLS1.2"},
                                                  {TLS1_3_VERSION, "TLS1.3"}};
  for (const auto& [v, name] : versions)
    if (v >= c.min_version && (!c.max_version || v <= c.max_version)) p += std::string(":+VERS-") + name;
  std::set<std::string> kx, cipher, mac;
  for (const auto& n : c.cipher_suites.empty() ? kDefaultSuites : c.cipher_suites) {
    const Suite& s = kSuites.at(n);
    kx.insert(s.kx), cipher.insert(s.cipher), mac.insert(s.mac);
  }
  p += ":-KX-ALL";
  for (const auto& k : kx) p += ":+" + k;
  p += ":-CIPHER-ALL";
  for (const auto& k : cipher) p += ":+" + k;
  p += ":-MAC-ALL";
  for (const auto& k : mac) p += ":+" + k;
  return p + ":-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1";
}

bool bcrypt_matches(const std::string& hash, const std::string& password) {
  if (!is_bcrypt(hash) || password.find('\0') != std::string::npos) return false;
  auto data = std::make_unique<crypt_data>();  // ~32 KB: too big for a worker thread's stack
  const char* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  return out && CRYPTO_memcmp(out, hash.c_str(), hash.size()) == 0 && std::strlen(out) == hash.size();
}

}  // namespace siteprobe
