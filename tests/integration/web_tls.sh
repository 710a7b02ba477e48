#!/usr/bin/env bash
# --web.config.file (exporter-toolkit format), checked with curl against the real daemon:
# basic auth (none/wrong/unknown -> 401, right -> 200), TLS (plain HTTP to the TLS port fails,
# min_version enforced), client certificates (RequireAndVerifyClientCert: none or a foreign CA's
# -> refused, our CA's -> 200; the other four client_auth_types; client_allowed_sans), the TLS 1.2
# suites an RSA certificate gets (forward-secret AEAD only by default; cipher_suites honoured), and
# clear errors at start for broken web configs.
# Certificates come from a throwaway CA made here with openssl; bcrypt hashes from python3's crypt.
source "$(dirname "$0")/lib.sh"
need_root
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
cd "$TMP"

cat >inv.yml <<'YAML'
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r1, address: 127.0.0.1, role: router}
YAML
ca test-ca; ca rogue-ca
cert server test-ca "IP:127.0.0.1,DNS:localhost"
cert prometheus test-ca
cert intruder rogue-ca
cert scraper test-ca "DNS:prometheus.example"
openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.crt -days 2 -subj /CN=rsa \
  -addext subjectAltName=IP:127.0.0.1 2>/dev/null
hash=$(python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1<<8)))' 's3cret pass')
# shellcheck disable=SC2016 # the bcrypt prefix, literally
[[ "$hash" == '$2b$08$'* ]] || fail "python3 made no bcrypt hash: $hash"

# start_web CONFIG: runs siteprobe with the web config; returns once it logged its start, or
# returns 1 if it exited (its status in $SP_RC).
start_web() {
  SP_PORT=$(free_port)
  : >siteprobe.log
  "$SP_BIN" --config inv.yml --web.listen-address "127.0.0.1:$SP_PORT" --web.config.file "$1" \
    >>siteprobe.log 2>&1 &
  SP_PID=$!
  for _ in $(seq 100); do
    grep -q 'msg="siteprobe started"' siteprobe.log && return 0
    if ! kill -0 "$SP_PID" 2>/dev/null; then SP_RC=0; wait "$SP_PID" || SP_RC=$?; SP_PID=""; return 1; fi
    sleep 0.1
  done
  fail "siteprobe did not start with $1"
}
stop() { kill -TERM "$SP_PID"; wait "$SP_PID" || fail "siteprobe exited non-zero"; SP_PID=""; }
code() { curl -s -o body -w '%{http_code}' -m 5 "$@" || true; }

# --- basic auth over plain HTTP
printf 'basic_auth_users:\n  prometheus: %s\n' "$hash" >auth.yml
start_web auth.yml
u=http://127.0.0.1:$SP_PORT
[ "$(code "$u/metrics")" = 401 ] || fail "no credentials: not 401"
curl -s -D - -o /dev/null "$u/metrics" | grep -qi '^WWW-Authenticate: Basic' || fail "401 without WWW-Authenticate"
[ "$(code -u prometheus:wrong "$u/metrics")" = 401 ] || fail "wrong password: not 401"
[ "$(code -u nobody:'s3cret pass' "$u/metrics")" = 401 ] || fail "unknown user: not 401"
[ "$(code -u prometheus: "$u/metrics")" = 401 ] || fail "empty password: not 401"
[ "$(code -H 'Authorization: Basic !!!!' "$u/metrics")" = 401 ] || fail "garbage header: not 401"
[ "$(code "$u/-/healthy")" = 401 ] || fail "/-/healthy open without credentials"
[ "$(code -u 'prometheus:s3cret pass' "$u/metrics")" = 200 ] || fail "right credentials: not 200"
grep -q '^siteprobe_build_info' body || fail "no metrics with the right credentials"
[ "$(code -u 'prometheus:s3cret pass' "$u/-/ready")" = 200 ] || fail "/-/ready: not 200"
grep -q 's3cret' siteprobe.log && fail "password in the log"
stop
pass "basic auth: none/wrong/unknown/empty/garbage -> 401, right -> 200"

# --- TLS with basic auth; TLS 1.3 only
cat >tls.yml <<YAML
tls_server_config:
  cert_file: server.crt
  key_file: $TMP/server.key
  min_version: TLS13
basic_auth_users:
  prometheus: $hash
YAML
start_web tls.yml
u=https://127.0.0.1:$SP_PORT
[ "$(code --cacert test-ca.crt -u 'prometheus:s3cret pass' "$u/metrics")" = 200 ] || fail "TLS + auth: not 200"
grep -q '^siteprobe_build_info' body || fail "no metrics over TLS"
[ "$(code --cacert test-ca.crt "$u/metrics")" = 401 ] || fail "TLS without credentials: not 401"
c=$(code -u 'prometheus:s3cret pass' "http://127.0.0.1:$SP_PORT/metrics")
[ "$c" = 000 ] || fail "plain HTTP to the TLS port answered $c"
c=$(code --cacert test-ca.crt --tls-max 1.2 -u 'prometheus:s3cret pass' "$u/metrics")
[ "$c" = 000 ] || fail "TLS 1.2 accepted with min_version TLS13 ($c)"
c=$(code -u 'prometheus:s3cret pass' "$u/metrics")
[ "$c" = 000 ] || fail "client accepted the certificate without our CA ($c)"
stop
pass "TLS: 200 with our CA and credentials; plain HTTP and TLS 1.2 refused"

# --- client certificates
cat >mtls.yml <<YAML
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: test-ca.crt
YAML
start_web mtls.yml
u=https://127.0.0.1:$SP_PORT
[ "$(code --cacert test-ca.crt "$u/metrics")" = 000 ] || fail "no client certificate accepted"
[ "$(code --cacert test-ca.crt --cert intruder.crt --key intruder.key "$u/metrics")" = 000 ] ||
  fail "client certificate of a foreign CA accepted"
[ "$(code --cacert test-ca.crt --cert prometheus.crt --key prometheus.key "$u/metrics")" = 200 ] ||
  fail "client certificate of our CA refused"
stop
pass "RequireAndVerifyClientCert: none and foreign refused, ours -> 200"

# --- the other client_auth_types: no certificate, a foreign CA's, ours
for t in "RequestClientCert 200 200 200" "RequireAnyClientCert 000 200 200" \
  "VerifyClientCertIfGiven 200 000 200"; do
  read -r type none foreign ours <<<"$t"
  printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: %s\n' "$type" >ca.yml
  [ "$type" = VerifyClientCertIfGiven ] && echo '  client_ca_file: test-ca.crt' >>ca.yml
  start_web ca.yml
  u=https://127.0.0.1:$SP_PORT
  got="$(code --cacert test-ca.crt "$u/metrics") $(code --cacert test-ca.crt --cert intruder.crt --key intruder.key \
    "$u/metrics") $(code --cacert test-ca.crt --cert prometheus.crt --key prometheus.key "$u/metrics")"
  [ "$got" = "$none $foreign $ours" ] || fail "$type: none/foreign/ours got $got, want $none $foreign $ours"
  stop
done
pass "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven: as exporter-toolkit"

# --- client_allowed_sans: our CA's certificate with an allowed SAN -> 200; without -> refused
cat >sans.yml <<YAML
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: test-ca.crt
  client_allowed_sans: [prometheus.example, 192.0.2.7]
YAML
start_web sans.yml
u=https://127.0.0.1:$SP_PORT
[ "$(code --cacert test-ca.crt --cert scraper.crt --key scraper.key "$u/metrics")" = 200 ] ||
  fail "client certificate with an allowed SAN refused"
[ "$(code --cacert test-ca.crt --cert prometheus.crt --key prometheus.key "$u/metrics")" = 000 ] ||
  fail "client certificate without an allowed SAN accepted"
[ "$(code --cacert test-ca.crt --cert server.crt --key server.key "$u/metrics")" = 000 ] ||
  fail "the server's own certificate accepted as a client"
stop
pass "client_allowed_sans: allowed SAN -> 200; none, or the server's own certificate -> refused"

# --- TLS 1.2 suites for an RSA certificate, each tried with openssl s_client
# suites FILE: sets $got to the TLS 1.2 suites (OpenSSL names) the daemon started with FILE accepts.
# Not run inside $(...): the daemon's PID must reach lib.sh's cleanup should the test fail or time out.
suites() {
  start_web "$1"
  local c ok=()
  for c in $(openssl ciphers -tls1_2 'ALL:@SECLEVEL=0' | tr ':' ' '); do
    [[ "$c" == TLS_* ]] && continue  # TLS 1.3 suites
    if timeout 10 openssl s_client -connect "127.0.0.1:$SP_PORT" -tls1_2 -cipher "$c" </dev/null >/dev/null 2>&1; then
      ok+=("$c")
    fi
  done
  stop
  got="${ok[*]}"
}
printf 'tls_server_config:\n  cert_file: rsa.crt\n  key_file: rsa.key\n' >rsa.yml
suites rsa.yml
for c in $got; do [[ "$c" =~ ^ECDHE-.*(GCM|CHACHA20-POLY1305) ]] || fail "suite without forward secrecy or AEAD: $c (all: $got)"; done
[ "$(wc -w <<<"$got")" = 3 ] || fail "want the 3 ECDHE-RSA AEAD suites, got: $got"
pass "TLS 1.2, RSA certificate, default: only forward-secret AEAD suites ($got)"
printf '  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n' >>rsa.yml
suites rsa.yml
[ "$got" = ECDHE-RSA-AES256-GCM-SHA384 ] || fail "cipher_suites not honoured: $got"
sed -i 's/cipher_suites: .*/cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]/' rsa.yml
suites rsa.yml
[ "$got" = "ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA" ] || fail "cipher_suites not honoured: $got"
pass "cipher_suites honoured (one suite; a CBC suite opted into)"

# --- broken web configs: exit 1 at start, with what is wrong and where
bad() {  # bad FILE EXPECTED_TEXT
  if start_web "$1"; then fail "started with $1"; fi
  [ "$SP_RC" = 1 ] || fail "$1: exit status $SP_RC, want 1"
  grep -qF -- "$2" siteprobe.log || { cat siteprobe.log; fail "$1: no '$2' in the log"; }
}
printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: intruder.key\n' >mismatch.yml
bad mismatch.yml 'mismatch.yml:2:3: tls_server_config: key_file \"intruder.key\" does not match cert_file'
printf 'tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n' >missing.yml
bad missing.yml 'cannot load cert_file \"missing.crt\": error:80000002:system library::No such file or directory'
printf 'basic_auth_users:\n  prometheus: s3cret\ntls_server_config:\n  cert_file: server.crt\n' >two.yml
bad two.yml 'two.yml:2:15: basic_auth_users.prometheus: not a bcrypt hash'
bad two.yml 'two.yml:4:3: tls_server_config: missing key_file'
grep -q 's3cret' siteprobe.log && fail "the rejected hash value was logged"
bad nonexistent.yml 'nonexistent.yml: cannot read web config file'
printf 'tls_server_config:\n  cert_file: rsa.crt\n  key_file: rsa.key\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n' >rc4.yml
bad rc4.yml 'rc4.yml:4:19: tls_server_config.cipher_suites[0]: unknown or insecure suite \"TLS_RSA_WITH_RC4_128_SHA\"'
pass "broken web configs: exit 1 with FILE:LINE:COL errors"
