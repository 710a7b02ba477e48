#!/usr/bin/env bash
# Hostile HTTP clients (issue #20 items 3, 4, 6) against the real daemon with basic auth, each
# while a Prometheus-style scrape (basic auth, Accept-Encoding: gzip) must succeed within 2 s:
# - slowloris: 150 connections from 3 addresses, then 1,000 from 10, dripping header bytes;
# - a flood of wrong passwords (a new one each time) over 400 connections from 40 addresses:
#   429s, one log line per checked failure without the password;
# - reloads: a cross-site form post refused (403), accepted with X-Siteprobe-Reload; a flood of
#   reloads gets 429 and the loop stays healthy;
# - --web.allowed-hosts refuses a foreign Host header.
# Attack traffic stays on 127.0.0.0/8 (http_attack.py refuses anything else).
source "$(dirname "$0")/lib.sh"
need_root
ulimit -n 8192
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$TMP" || exit 1
attack() { python3 "$HERE/http_attack.py" "$@"; }

small_inventory inv.yml
pw='s3cret pass'
hash=$(python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1<<10)))' "$pw")
# 200 more users with a cheap hash (bcrypt cost 4), for many first-time logins at once.
cheap=$(python3 -W ignore -c 'import crypt; print(crypt.crypt("pass", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))')
{ printf 'basic_auth_users:\n  prometheus: %s\n' "$hash"; for i in $(seq 0 199); do printf '  race%d: %s\n' "$i" "$cheap"; done
  printf '  drip: %s\n' "$cheap"; } >web.yml

# start ARGS...: the daemon with basic auth and the lifecycle API; waits until it answers.
start() {
  SP_PORT=$(free_port); SP_URL="http://127.0.0.1:$SP_PORT"
  "$SP_BIN" --config inv.yml --web.listen-address "127.0.0.1:$SP_PORT" --web.config.file web.yml \
    --web.enable-lifecycle "$@" >>siteprobe.log 2>&1 &
  SP_PID=$!
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -u "prometheus:$pw" "$SP_URL/-/ready")" = 200 ] && return 0
    sleep 0.1
  done
  fail "siteprobe not ready"
}
# valid_scrape LABEL: one Prometheus-style scrape; fails unless 200 within 2 s. Appends its time
# to times.LABEL.
valid_scrape() {
  local out
  out=$(curl -s -o scrape.gz -D scrape.h -w '%{http_code} %{time_total}' -m 10 -u "prometheus:$pw" \
    -H 'Accept-Encoding: gzip' -H 'Accept: text/plain;version=0.0.4' "$SP_URL/metrics" || true)
  echo "${out#* }" >>"times.$1"
  [ "${out%% *}" = 200 ] || fail "$1: valid scrape answered '${out%% *}' (${out#* } s)"
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 2 else 1)' "${out#* }" ||
    fail "$1: valid scrape took ${out#* } s"
}
# during LABEL SECONDS: valid scrapes once a second for SECONDS, then prints the slowest.
during() {
  for _ in $(seq "$2"); do valid_scrape "$1"; sleep 1; done
  sort -n "times.$1" | tail -1
}
# lag_ok: the loop kept up. One lag sample taken while hundreds of attack connections share 2 busy
# cores with the daemon says little, so the bound is loose: a blocked loop lags by seconds.
lag_ok() {
  local lag
  lag=$(metric siteprobe_loop_lag_seconds)
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 else 1)' "$lag" || fail "loop lag $lag s"
}
scrape() { curl -fsS -u "prometheus:$pw" "$SP_URL/metrics"; }  # for lib.sh's metric()

start
valid_scrape warmup
grep -qi '^Content-Encoding: gzip' scrape.h || fail "no gzip although the scrape asked for it"
gzip -dc scrape.gz | grep '^siteprobe_build_info' >/dev/null || fail "gzip body is not the exposition"
pass "Prometheus-style scrape: 200, gzip"

# --- malformed Authorization headers: 401, never a crash (Basic ==== once aborted the daemon)
long=$(head -c 10240 /dev/zero | tr '\0' 'A')
for h in 'Basic ====' 'Basic =' 'Basic A===' 'Basic !!!!' 'Basic' 'Basic dXNlcg==' "Basic $long" 'Bearer x'; do
  c=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: $h" "$SP_URL/metrics" || true)
  case "$c" in 401|431) ;; *) fail "Authorization '${h:0:20}': answered '$c'";; esac
  kill -0 "$SP_PID" 2>/dev/null || fail "siteprobe died on Authorization '${h:0:20}'"
done
valid_scrape malformed
pass "malformed Authorization headers: 401, daemon alive"

# --- first-time logins: each suspended for its bcrypt check and resumed, never left unanswered
attack auth "$SP_PORT" 10 "$(seq -s, -f '127.0.%g.7' 0 39)" 20 race pass >race.json
python3 -c 'import json,sys; s=json.load(open("race.json")); sys.exit(0 if s["codes"] == {"200": 200} and s["slowest_s"] <= 2 else 1)' ||
  fail "first-time logins not all answered 200 within 2 s: $(cat race.json)"
pass "200 first-time logins, 10 at a time: all 200 within 2 s ($(cat race.json))"

# --- the header timeout lasts until the answer: a keep-alive client dripping its second request,
# and a POST whose body is dripped after its bcrypt check (a first-time login), are both closed
# within ~6 s. (libmicrohttpd 0.9.75 closes after every answer queued on the handler's first call,
# so the keep-alive case is closed at once today; the timeout covers it should that change.)
python3 - "$SP_PORT" "$pw" >drip.out <<'PY' || fail "dripping clients: $(cat drip.out)"
import base64, socket, sys, time
port, pw = int(sys.argv[1]), sys.argv[2]

def drip(s, data, t0):
    s.settimeout(1)
    for ch in data:
        try:
            s.send(bytes([ch]))
            if s.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
        if time.monotonic() - t0 > 12:
            break
    sys.exit(f"still open after {time.monotonic() - t0:.1f} s")

auth = base64.b64encode(f"prometheus:{pw}".encode()).decode()
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(10)
s.sendall(f"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n".encode())
buf = b""
while b"Healthy" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("closed before the first answer")
    buf += chunk
keepalive = drip(s, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: " + b"x" * 30, time.monotonic())

auth = base64.b64encode(b"drip:pass").decode()  # never used before: suspended for bcrypt, resumed
t0 = time.monotonic()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Length: 40\r\n\r\n".encode())
post = drip(s, b"y" * 40, t0)
print(f"keep-alive closed after {keepalive:.1f} s, POST body after {post:.1f} s")
sys.exit(0 if keepalive <= 6.5 and post <= 6.5 else 1)
PY
pass "dripping clients: $(cat drip.out)"

# --- slowloris
srcs3=127.0.0.2,127.0.0.3,127.0.0.4
srcs10=$(seq -s, -f '127.0.0.%g' 2 11)
attack slowloris "$SP_PORT" 150 "$srcs3" 12 >slow150.json &
apid=$!
sleep 2
max=$(during slow150 8)
wait "$apid"
python3 -c 'import json,sys; s=json.load(open("slow150.json")); sys.exit(0 if s["longest_s"] <= 8 else 1)' ||
  fail "slowloris connections were held past the header timeout: $(cat slow150.json)"
pass "slowloris, 150 connections: valid scrapes within ${max} s; attacker: $(cat slow150.json)"

attack slowloris "$SP_PORT" 1000 "$srcs10" 12 >slow1000.json &
apid=$!
sleep 3
max=$(during slow1000 7)
wait "$apid"
python3 -c 'import json,sys; s=json.load(open("slow1000.json")); sys.exit(0 if s["closed_within_1s"] > 0 else 1)' ||
  fail "no per-address cap: $(cat slow1000.json)"
pass "slowloris, 1000 connections: valid scrapes within ${max} s; attacker: $(cat slow1000.json)"
lag_ok

# --- wrong passwords, a new one each time
: >flood.mark; mark=$(wc -l <siteprobe.log)
attack flood "$SP_PORT" 400 "$(seq -s, -f '127.0.%g.9' 0 39)" 10 prometheus >flood.json &
apid=$!
sleep 2
max=$(during flood 7)
wait "$apid"
python3 -c 'import json,sys; c=json.load(open("flood.json"))["codes"]; sys.exit(0 if c.get("429", 0) > 0 else 1)' ||
  fail "no 429 during the wrong-password flood: $(cat flood.json)"
tail -n +"$mark" siteprobe.log | grep -q 'msg="authentication failed" client=127.0.[0-9]*.9 user=prometheus' ||
  fail "failed logins not logged with client and user"
pass "wrong-password flood, 400 connections: valid scrapes within ${max} s; attacker: $(cat flood.json)"
lag_ok

# --- reloads
code() { curl -s -o body -w '%{http_code}' -m 10 -u "prometheus:$pw" "$@" || true; }
c=$(code -X POST -H 'Origin: http://evil.example' -d 'x=1' "$SP_URL/-/reload")
[ "$c" = 403 ] || fail "cross-site form post to /-/reload answered $c"
grep -q 'X-Siteprobe-Reload' body || fail "the 403 does not name the header to send"
c=$(code -X POST -d 'x=1' "$SP_URL/-/reload")
[ "$c" = 403 ] || fail "form post to /-/reload without Origin answered $c"
c=$(code -X POST -H 'X-Siteprobe-Reload: 1' -d 'x=1' "$SP_URL/-/reload")
[ "$c" = 200 ] || fail "form post with X-Siteprobe-Reload answered $c"
c=$(code -X POST "$SP_URL/-/reload")
[ "$c" = 200 ] || fail "plain curl -X POST answered $c"
pass "cross-site reload: form post 403; with X-Siteprobe-Reload or as plain curl -X POST 200"

for _ in $(seq 40); do code -X POST -H 'X-Siteprobe-Reload: 1' "$SP_URL/-/reload" >>reload.codes; echo >>reload.codes; done
n200=$(grep -c '^200$' reload.codes || true); n429=$(grep -c '^429$' reload.codes || true)
if [ "$n429" = 0 ] || [ "$((n200 + n429))" != 40 ]; then fail "reload flood: $n200 x 200, $n429 x 429 of 40"; fi
curl -s -D - -o /dev/null -u "prometheus:$pw" -X POST -H 'X-Siteprobe-Reload: 1' "$SP_URL/-/reload" |
  grep -qi '^Retry-After: [0-9]' || fail "429 without Retry-After"
valid_scrape reloads
lag_ok
pass "reload flood: $n200 reloads then 429 ($n429 of 40); loop healthy"
kill -TERM "$SP_PID"; wait "$SP_PID" || fail "siteprobe exited non-zero"; SP_PID=""

# --- Host allow-list (DNS rebinding)
start --web.allowed-hosts "127.0.0.1,localhost"
[ "$(code -H 'Host: evil.example' "$SP_URL/metrics")" = 403 ] || fail "foreign Host header answered"
[ "$(code -H "Host: localhost:$SP_PORT" "$SP_URL/metrics")" = 200 ] || fail "allowed Host refused"
valid_scrape hosts
pass "--web.allowed-hosts: foreign Host 403, listed ones 200"

# --- a slow reload (20,000 devices) runs on the loop thread with its requests suspended: 8 at once
# no longer occupy the 4 HTTP threads, which keep answering
python3 - >inv.yml <<'PY'
print("defaults:\n  icmp: {interval: 60s, timeout: 1s, packets: 1, spacing: 50ms}\nsites:")
for s in range(200):
    print(f"  - id: s{s}\n    name: Site {s}\n    level: province\n    devices:")
    for d in range(100):
        n = s * 100 + d
        print(f"      - {{name: d{n}, address: 127.{1 + n // 65536}.{(n // 256) % 256}.{n % 256 or 1}, role: router}}")
PY
: >bigreload.codes
pids=()
for _ in $(seq 8); do
  (curl -s -o /dev/null -w '%{http_code}\n' -m 30 -u "prometheus:$pw" -X POST -H 'X-Siteprobe-Reload: 1' \
    "$SP_URL/-/reload" >>bigreload.codes) &
  pids+=($!)
done
sleep 0.3
out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -m 10 -u "prometheus:$pw" "$SP_URL/-/healthy" || true)
wait "${pids[@]}"  # not the daemon
[ "${out%% *}" = 200 ] || fail "during a slow reload: /-/healthy answered '${out%% *}'"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 0.5 else 1)' "${out#* }" ||
  fail "during a slow reload: /-/healthy took ${out#* } s (HTTP threads blocked?)"
[ "$(grep -c '^200$' bigreload.codes)" = 8 ] || fail "slow reloads: $(tr '\n' ' ' <bigreload.codes)"
grep -q 'inventory reloaded.*20000 devices' siteprobe.log || fail "the 20,000-device inventory was not loaded"
pass "8 concurrent slow reloads (20,000 devices): all 200; /-/healthy meanwhile in ${out#* } s"
