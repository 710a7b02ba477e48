#!/usr/bin/env bash
# The command line and the log (issue #12): help in every spelling prints the usage and exits 0;
# an unknown flag is named as unknown; a bad --web.listen-address stops at parse time with exit 2;
# the default listen address is loopback only; every line the daemon writes at start is logfmt;
# a reload says which sites and devices were added, removed and changed.
source "$(dirname "$0")/lib.sh"
need_root

for args in "help" "-h" "--help" "check --help" "check -h" "readiness --help" "--config x.yml --help"; do
  rc=0; read -r -a argv <<<"$args"
  "$SP_BIN" "${argv[@]}" >"$TMP/out" 2>"$TMP/err" || rc=$?
  if [ $rc != 0 ] || ! grep -q '^usage: siteprobe' "$TMP/out" || [ -s "$TMP/err" ]; then
    fail "siteprobe $args: exit $rc, stdout: $(head -c 200 "$TMP/out"), stderr: $(cat "$TMP/err")"
  fi
done
pass "help, -h, --help, check --help, readiness --help: usage on stdout, exit 0"

# expect_2 'WANTED STDERR LINE' ARGS...: exit 2, and the first line of stderr is exactly that.
expect_2() {
  local want=$1 rc=0; shift
  "$SP_BIN" "$@" >/dev/null 2>"$TMP/err" || rc=$?
  if [ $rc != 2 ] || [ "$(head -n1 "$TMP/err")" != "$want" ]; then
    fail "siteprobe $*: exit $rc, stderr: $(head -n1 "$TMP/err"); wanted exit 2 and: $want"
  fi
}
expect_2 "siteprobe: unknown flag: --no-such-flag" --config x.yml --no-such-flag
expect_2 "siteprobe: unknown flag: --web.listen-adress" --config x.yml --web.listen-adress=:9723
expect_2 "siteprobe: unknown command: chek" chek x.yml
expect_2 "siteprobe: --config needs a value" --config
pass "unknown flags and commands are named as unknown"
expect_2 'siteprobe: bad --web.listen-address 9723: no port (use IP:PORT, HOSTNAME:PORT or :PORT)' \
  --config x.yml --web.listen-address 9723
expect_2 'siteprobe: bad --web.listen-address 127.0.0.1:99999: port "99999" is not a number from 0 to 65535' \
  --config x.yml --web.listen-address 127.0.0.1:99999
expect_2 'siteprobe: bad --web.listen-address 127.0.0.1:http: port "http" is not a number from 0 to 65535' \
  --config x.yml --web.listen-address=127.0.0.1:http
expect_2 'siteprobe: bad --web.listen-address [::g]:9723: "[::g]" is not an IPv6 address in brackets' \
  --config x.yml --web.listen-address '[::g]:9723'
pass "a bad --web.listen-address stops at parse time, exit 2, before the inventory is read"

# Without --web.listen-address: 127.0.0.1:9723 only, in a network namespace of its own (so the port
# is free). unshare needs no /run/netns, so this works in a chroot too.
small_inventory "$TMP/inv.yml"
unshare --net sh -c "ip link set lo up && exec '$SP_BIN' --config '$TMP/inv.yml'" >"$TMP/siteprobe.log" 2>&1 &
SP_PID=$!
for _ in $(seq 1 50); do grep -q 'msg="siteprobe started"' "$TMP/siteprobe.log" && break; sleep 0.1; done
listening=$(nsenter --net=/proc/$SP_PID/ns/net ss -Hltn | awk '{print $4}' | paste -sd' ')
[ "$listening" = "127.0.0.1:9723" ] || fail "by default siteprobe listens on '$listening', wanted 127.0.0.1:9723"
pass "default listen address: 127.0.0.1:9723 only"
# The daemon runs itself again once with its heap on huge pages (daemon/main.cpp use_huge_pages).
tr '\0' '\n' </proc/$SP_PID/environ | grep -qx 'GLIBC_TUNABLES=glibc.malloc.hugetlb=1' ||
  fail "the daemon's environment lacks GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
[ "$(readlink /proc/$SP_PID/exe)" = "$(readlink -f "$SP_BIN")" ] || fail "the daemon is not $SP_BIN after its exec"
pass "the daemon's heap is on huge pages (GLIBC_TUNABLES), same binary, same pid"

# Every line at start, at reload and at stop is logfmt: ts=... level=... msg=...
SP_URL=http://127.0.0.1:9723
cat >>"$TMP/inv.yml" <<'YAML'
      - {name: r2, address: 127.0.0.2, role: router}
  - {id: bk.x, name: Xã X, level: district, parent: bk, devices: [{name: r1, address: 127.0.0.3, role: router}]}
YAML
kill -HUP $SP_PID
for _ in $(seq 1 50); do grep -q 'msg="inventory reloaded"' "$TMP/siteprobe.log" && break; sleep 0.1; done
grep 'msg="inventory reloaded"' "$TMP/siteprobe.log" |
  grep -qF 'changes="sites added 1 (bk.x); devices added 2 (bk.x/r1, bk/r2)"' ||
  fail "reload log: $(grep 'inventory reloaded' "$TMP/siteprobe.log")"
pass "the reload log names what changed"
kill -TERM $SP_PID; wait $SP_PID || fail "siteprobe exited $? on SIGTERM"; SP_PID=""
bad=$(grep -vE '^ts=[0-9T:.Z-]+ level=(debug|info|warn|error) msg=' "$TMP/siteprobe.log" || true)
[ -z "$bad" ] || fail "lines that are not logfmt: $bad"
pass "every log line is logfmt ($(wc -l <"$TMP/siteprobe.log") lines)"

# An operator's own setting of the tunable is kept (no second exec).
unshare --net sh -c "ip link set lo up && GLIBC_TUNABLES=glibc.malloc.hugetlb=0 exec '$SP_BIN' --config '$TMP/inv.yml'" \
  >"$TMP/siteprobe.log" 2>&1 &
SP_PID=$!
for _ in $(seq 1 50); do grep -q 'msg="siteprobe started"' "$TMP/siteprobe.log" && break; sleep 0.1; done
tr '\0' '\n' </proc/$SP_PID/environ | grep -qx 'GLIBC_TUNABLES=glibc.malloc.hugetlb=0' ||
  fail "GLIBC_TUNABLES=glibc.malloc.hugetlb=0 was not kept: $(tr '\0' '\n' </proc/$SP_PID/environ | grep GLIBC_)"
kill -TERM $SP_PID; wait $SP_PID || fail "siteprobe exited $? on SIGTERM"; SP_PID=""
pass "GLIBC_TUNABLES=glibc.malloc.hugetlb=0 from the operator is kept"
