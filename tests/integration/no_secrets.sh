#!/usr/bin/env bash
# No SNMP secret (community, auth/priv passphrase; inline or from a file) ever shows up in
# `siteprobe check` output, in the daemon's log at debug level (start, reloads good and bad), in a
# POST /-/reload error body or on /metrics (the devices are polled over SNMP with those secrets,
# against a closed port), including for inventories whose errors sit right at a
# secret. And site state changes are logged once per change, not once per round.
source "$(dirname "$0")/lib.sh"
need_root
cd "$TMP"
mkdir secrets
printf 'zq-SECRET-community-file\n' >secrets/community
printf 'zq-SECRET-authpass-file\n' >secrets/auth

good() {
  cat <<'YAML'
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 2, spacing: 50ms}
auth:
  v2-inline:
    version: 2c
    community: zq-SECRET-community-inline
  v2-file:
    version: 2c
    community_file: secrets/community
  v3:
    version: 3
    username: monitor
    security_level: authPriv
    auth_protocol: SHA-256
    auth_passphrase_file: secrets/auth
    priv_protocol: AES
    priv_passphrase: zq-SECRET-privpass-inline
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r1, address: 127.0.0.1, role: router, snmp: {auth: v2-inline, port: 9, interval: 1s, timeout: 200ms}}
      - {name: dead, address: 127.0.0.2, role: switch, snmp: {auth: v2-file, port: 9, interval: 1s, timeout: 200ms}}
      - {name: v3, address: 127.0.0.3, role: switch, snmp: {auth: v3, port: 9, interval: 1s, timeout: 200ms}}
YAML
}
good >inv.yml
# Broken inventories, each with its error at a secret.
good | sed 's/^    version: 3$/    version: 3\n    community: zq-SECRET-community-v3/' >bad-not-for.yml
good | sed 's/zq-SECRET-privpass-inline/zqSECRT/' >bad-short.yml
good | sed 's/^    community_file: secrets\/community$/&\n    community: zq-SECRET-community-both/' >bad-both.yml
good | sed 's/^    community: zq-SECRET-community-inline$/&\n    community: zq-SECRET-community-dup/' >bad-dup.yml
good | sed 's/^    community: zq-SECRET-community-inline$/    comunity: zq-SECRET-community-typo/' >bad-typo.yml
good | sed 's/^    community: zq-SECRET-community-inline$/    community: [zq-SECRET-community-list]/' >bad-type.yml
good | sed 's/^    community: zq-SECRET-community-inline$/    community: "zq-SECRET-community-unclosed/' >bad-yaml.yml
good | sed 's/^    priv_passphrase: .*$/    priv_passphrase: {zq-SECRET-privpass-map: 1}/' >bad-map.yml
bad=(bad-*.yml)

leaks() { grep -l 'SECRET' "$@" 2>/dev/null || true; }
"$SP_BIN" check inv.yml >check-good.out 2>&1 || { cat check-good.out; fail "the good inventory fails check"; }
for f in bad-*.yml; do
  if "$SP_BIN" check "$f" >"check-$f.out" 2>&1; then fail "$f passes check"; fi
  grep -q "^$f:[0-9]*:[0-9]*: " "check-$f.out" || { cat "check-$f.out"; fail "$f: no located error"; }
done
[ -z "$(leaks check-*.out)" ] || { grep SECRET check-*.out; fail "secret in check output"; }
pass "siteprobe check: no secret in the output of 1 good and ${#bad[@]} broken inventories"

for f in bad-*.yml; do "$SP_BIN" --config "$f" --log.level debug >>start-fail.log 2>&1 && fail "started with $f"; done
[ "$(grep -c 'msg="inventory rejected"' start-fail.log)" = "${#bad[@]}" ] || fail "not every start rejected"
[ -z "$(leaks start-fail.log)" ] || { grep SECRET start-fail.log; fail "secret in the log of a rejected start"; }
pass "rejected starts: no secret in the log"

# A running daemon at debug level, with SIGHUP and HTTP reloads of good and broken inventories.
SP_PORT=$(free_port); SP_URL="http://127.0.0.1:$SP_PORT"
"$SP_BIN" --config inv.yml --web.listen-address "127.0.0.1:$SP_PORT" --web.enable-lifecycle \
  --log.level debug >siteprobe.log 2>&1 &
SP_PID=$!
for _ in $(seq 100); do curl -fsS "$SP_URL/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
for f in bad-*.yml; do
  cp "$f" inv.yml
  kill -HUP "$SP_PID"; sleep 0.2
  curl -s -X POST "$SP_URL/-/reload" >>reload-bodies.out
done
good >inv.yml
kill -HUP "$SP_PID"
wait_for 'v == 1' siteprobe_config_last_reload_successful '' 5
sleep 2
scrape >metrics.out
sent=$(SNAPSHOT=metrics.out metric siteprobe_snmp_pdus_sent_total 'device="r1"')
{ [ "$sent" != absent ] && ge "$sent" 1; } || fail "r1 was not polled over SNMP ($sent)"
[ "$(grep -c 'reload rejected' siteprobe.log)" -ge 16 ] || fail "broken reloads were not all rejected"
[ "$(grep -c '^Inventory rejected' reload-bodies.out)" = "${#bad[@]}" ] || fail "HTTP reloads not rejected"
[ -z "$(leaks siteprobe.log reload-bodies.out metrics.out)" ] ||
  { grep -h SECRET siteprobe.log reload-bodies.out metrics.out; fail "secret leaked from the daemon"; }
pass "daemon at debug level: no secret in the log, in reload error bodies or on /metrics"

# Site state: bk is up (r1 answers) and stays up; one "site state changed" line in ~6 rounds.
sleep 4
n=$(grep -c 'msg="site state changed" site=bk' siteprobe.log || true)
[ "$n" = 1 ] || { grep 'site state' siteprobe.log; fail "$n state change lines for one change"; }
pass "one log line per site state change, none per round"
