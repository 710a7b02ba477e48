#include "daemon/http_client.h"

#include <gnutls/gnutls.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "util/net.h"

namespace siteprobe {
namespace {

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16 |
                   static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8 |
                   static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += t[(n >> s) & 63];
  }
  if (i < in.size()) {
    auto n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += t[(n >> 18) & 63];
    out += t[(n >> 12) & 63];
    out += i + 1 < in.size() ? t[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int connect_to(const std::string& host, int port, int timeout_s, std::string& err) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (const int e = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); e != 0) {
    err = gai_strerror(e);
    return -1;
  }
  int fd = -1;
  err = "no address";
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const timeval tv{timeout_s, 0};
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
                    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)) {
      err = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

struct Tls {
  gnutls_certificate_credentials_t cred = nullptr;
  gnutls_session_t session = nullptr;
  ~Tls() {
    if (session) gnutls_deinit(session);
    if (cred) gnutls_certificate_free_credentials(cred);
  }
};

// Sends `req` over TLS on `fd` and reads the whole response into `resp`; "" or the error.
std::string tls_exchange(const HttpGet& g, const std::string& host, int fd, const std::string& req,
                         std::string& resp) {
  Tls t;
  int rc = gnutls_certificate_allocate_credentials(&t.cred);
  if (rc == GNUTLS_E_SUCCESS)
    rc = g.ca_file.empty()
             ? gnutls_certificate_set_x509_system_trust(t.cred)
             : gnutls_certificate_set_x509_trust_file(t.cred, g.ca_file.c_str(), GNUTLS_X509_FMT_PEM);
  if (rc < 0) return "cannot load the CA file " + g.ca_file + ": " + gnutls_strerror(rc);
  if (rc == 0 && !g.ca_file.empty()) return "no certificate in the CA file " + g.ca_file;
  if (!g.cert_file.empty() && (rc = gnutls_certificate_set_x509_key_file(
                                   t.cred, g.cert_file.c_str(), g.key_file.c_str(), GNUTLS_X509_FMT_PEM)) < 0)
    return "cannot load the client certificate " + g.cert_file + " / " + g.key_file + ": " +
           gnutls_strerror(rc);
  if ((rc = gnutls_init(&t.session, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL)) < 0 ||
      (rc = gnutls_set_default_priority(t.session)) < 0 ||
      (rc = gnutls_credentials_set(t.session, GNUTLS_CRD_CERTIFICATE, t.cred)) < 0)
    return std::string("TLS setup: ") + gnutls_strerror(rc);
  // SNI only for names; the certificate must match the host either way (IP SANs for addresses).
  if (!net::parse_ip(host)) gnutls_server_name_set(t.session, GNUTLS_NAME_DNS, host.data(), host.size());
  gnutls_session_set_verify_cert(t.session, host.c_str(), 0);
  gnutls_transport_set_int(t.session, fd);
  gnutls_handshake_set_timeout(t.session, static_cast<unsigned>(g.timeout_s) * 1000);
  do rc = gnutls_handshake(t.session);
  while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
  if (rc < 0) {
    std::string e = std::string("TLS handshake: ") + gnutls_strerror(rc);
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
      gnutls_datum_t why{};
      if (gnutls_certificate_verification_status_print(gnutls_session_get_verify_cert_status(t.session),
                                                       GNUTLS_CRT_X509, &why, 0) == 0) {
        e += std::string(" (") + reinterpret_cast<const char*>(why.data) + "; give the CA with --ca-file)";
        gnutls_free(why.data);
      }
    }
    return e;
  }
  for (std::size_t off = 0; off < req.size();) {
    const auto n = gnutls_record_send(t.session, req.data() + off, req.size() - off);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
    if (n < 0) return std::string("TLS send: ") + gnutls_strerror(static_cast<int>(n));
    off += static_cast<std::size_t>(n);
  }
  char buf[8192];
  for (;;) {
    const auto n = gnutls_record_recv(t.session, buf, sizeof buf);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
    if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) break;  // HTTP/1.0: the server closes
    if (n < 0) return std::string("TLS receive: ") + gnutls_strerror(static_cast<int>(n));
    resp.append(buf, static_cast<std::size_t>(n));
    if (resp.size() > (64u << 20)) return "answer larger than 64 MiB";
  }
  gnutls_bye(t.session, GNUTLS_SHUT_WR);
  return "";
}

}  // namespace

int http_get(const HttpGet& g, const std::string& path, std::string& body, std::string& err) {
  const bool tls = g.url.rfind("https://", 0) == 0;
  if (!tls && g.url.rfind("http://", 0) != 0) {
    err = "the URL must start with http:// or https://";
    return 0;
  }
  std::string rest = g.url.substr(tls ? 8 : 7);
  rest = rest.substr(0, rest.find('/'));  // a trailing path is ignored
  std::string host = rest;
  int port = tls ? 443 : 80;
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    host = rest.substr(0, colon);
    port = std::atoi(rest.c_str() + colon + 1);
  }
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || port <= 0 || port > 65535) {
    err = "bad URL (use http://HOST:PORT or https://HOST:PORT)";
    return 0;
  }
  Fd fd{connect_to(host, port, g.timeout_s, err)};
  if (fd.fd < 0) return 0;
  std::string req = "GET " + path +
                    " HTTP/1.0\r\nHost: " + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                    ":" + std::to_string(port) + "\r\n";
  if (!g.username.empty()) req += "Authorization: Basic " + base64(g.username + ":" + g.password) + "\r\n";
  req += "\r\n";
  std::string resp;
  if (tls) {
    if (err = tls_exchange(g, host, fd.fd, req, resp); !err.empty()) return 0;
  } else if (send(fd.fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[8192];
    for (ssize_t n; (n = recv(fd.fd, buf, sizeof buf, 0)) > 0 && resp.size() <= (64u << 20);)
      resp.append(buf, static_cast<std::size_t>(n));
  }
  const auto end = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12 || end == std::string::npos) {
    err = resp.empty() ? "connection closed without an answer (TLS port? try https://)"
                       : "not an HTTP response";
    return 0;
  }
  body = resp.substr(end + 4);
  return std::atoi(resp.c_str() + 9);
}

}  // namespace siteprobe
