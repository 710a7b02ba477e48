#!/usr/bin/env bash
# `siteprobe readiness` against a daemon set up as docs/install.md recommends (issue #12 item 3):
# plain HTTP; basic auth with the password from a file; TLS with a CA file, or with the daemon's
# own certificate found through its web config; a client certificate when the daemon requires one;
# and, without --url, the listen address and web config of an installed daemon's defaults file.
# Each failure mode must exit 2 with a reason, never print a report.
source "$(dirname "$0")/lib.sh"
need_root
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
cd "$TMP"

small_inventory inv.yml
ca test-ca; ca rogue-ca
cert server test-ca "IP:127.0.0.1,DNS:localhost"
cert client test-ca
cert intruder rogue-ca
hash=$(python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1<<8)))' 's3cret pass')
printf 's3cret pass\n' >pw; printf 'wrong\n' >badpw; chmod 600 pw badpw

start_web() {  # start_web [WEB_CONFIG]
  SP_PORT=$(free_port)
  : >siteprobe.log
  "$SP_BIN" --config inv.yml --web.listen-address "127.0.0.1:$SP_PORT" ${1:+--web.config.file "$1"} \
    >>siteprobe.log 2>&1 &
  SP_PID=$!
  for _ in $(seq 100); do
    grep -q 'msg="siteprobe started"' siteprobe.log && return 0
    sleep 0.1
  done
  fail "siteprobe did not start with ${1:-no web config}"
}
stop() { kill -TERM "$SP_PID"; wait "$SP_PID" || fail "siteprobe exited non-zero"; SP_PID=""; }
# expect RC WHAT ARGS...: runs `siteprobe readiness ARGS`; its exit code must be RC, and a report
# (rc 0/1) must be the readiness page, an error (rc 2) must say why on stderr.
expect() {
  local want=$1 what=$2 rc=0; shift 2
  "$SP_BIN" readiness "$@" >out 2>err || rc=$?
  [ "$rc" = "$want" ] || fail "$what: exit $rc, want $want; stdout: $(head -3 out); stderr: $(cat err)"
  if [ "$want" = 2 ]; then { [ -s err ] && [ ! -s out ]; } || fail "$what: no reason or a report: $(cat err out)"
  else grep -q 'endpoints' out || fail "$what: not a readiness report: $(cat out)"; fi
}

start_web
expect 0 "plain HTTP" --url "http://127.0.0.1:$SP_PORT"
expect 2 "https to a plain port" --url "https://127.0.0.1:$SP_PORT" --ca-file test-ca.crt
printf 'ARGS="--web.listen-address 127.0.0.1:%s"\n' "$SP_PORT" >defaults
expect 0 "defaults file, plain" --defaults defaults
stop
pass "plain HTTP, by URL and from the defaults file"

printf 'basic_auth_users:\n  noc: %s\n' "$hash" >auth.yml
start_web auth.yml
expect 2 "no credentials" --url "http://127.0.0.1:$SP_PORT"
grep -q 'HTTP 401' err || fail "no credentials: $(cat err)"
expect 2 "wrong password" --url "http://127.0.0.1:$SP_PORT" --username noc --password-file badpw
expect 0 "right password" --url "http://127.0.0.1:$SP_PORT" --username noc --password-file pw
expect 2 "password on argv is not a flag" --url "http://127.0.0.1:$SP_PORT" --username noc --password 's3cret pass'
stop
pass "basic auth: 401 without or with a wrong password; the right one read from a file"

printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  noc: %s\n' "$hash" >tls.yml
start_web tls.yml
expect 0 "TLS with the CA" --url "https://127.0.0.1:$SP_PORT" --ca-file test-ca.crt --username noc --password-file pw
expect 2 "TLS with a foreign CA" --url "https://127.0.0.1:$SP_PORT" --ca-file rogue-ca.crt --username noc --password-file pw
grep -qi 'certificate\|verif' err || fail "foreign CA: no certificate reason: $(cat err)"
expect 2 "plain HTTP to the TLS port" --url "http://127.0.0.1:$SP_PORT" --username noc --password-file pw
expect 0 "TLS by name (SAN localhost)" --url "https://localhost:$SP_PORT" --ca-file test-ca.crt --username noc --password-file pw
printf 'ARGS="--web.config.file %s --web.listen-address=127.0.0.1:%s"\n' "$TMP/tls.yml" "$SP_PORT" >defaults
expect 0 "installed daemon: https and its certificate from the defaults" --defaults defaults --username noc --password-file pw
stop
pass "TLS: our CA or the daemon's own certificate accepted, a foreign CA refused with a reason"

printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: test-ca.crt\n' >mtls.yml
start_web mtls.yml
expect 2 "client certificate required" --url "https://127.0.0.1:$SP_PORT" --ca-file test-ca.crt
expect 2 "foreign client certificate" --url "https://127.0.0.1:$SP_PORT" --ca-file test-ca.crt --cert-file intruder.crt --key-file intruder.key
expect 0 "our client certificate" --url "https://127.0.0.1:$SP_PORT" --ca-file test-ca.crt --cert-file client.crt --key-file client.key
expect 0 "web config gives scheme and CA" --web.config.file mtls.yml --url "https://127.0.0.1:$SP_PORT" --cert-file client.crt --key-file client.key
stop
pass "client certificates: none or a foreign CA's refused, ours accepted"
expect 2 "nothing listening" --url "http://127.0.0.1:$(free_port)"
pass "no daemon: exit 2 with the reason"
