/* Debian 12's CivetWeb 1.15 loads OpenSSL itself with dlopen("libssl.so") and dlopen("libcrypto.so")
 * and looks up OpenSSL 1.1 names. OpenSSL 3 has them all but one: SSL_get_peer_certificate became a
 * macro for SSL_get1_peer_certificate. This stub is the "libssl.so" siteprobe's RPATH points
 * CivetWeb at: it supplies that symbol and pulls in the real libssl.so.3 for the rest. Without it,
 * TLS needs libssl-dev and still fails ("cannot find SSL_get_peer_certificate"). */
#include <openssl/ssl.h>
#undef SSL_get_peer_certificate
X509* SSL_get_peer_certificate(const SSL* s);
X509* SSL_get_peer_certificate(const SSL* s) { return SSL_get1_peer_certificate(s); }
