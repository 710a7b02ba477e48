#!/usr/bin/env bash
# The built-in status page (issue #18) in a real headless Chromium, driven over the DevTools
# protocol (status_page.py), on the reference inventory during the demo's district-down step:
# Pác Nặm (district 8 and its communes) lives in a namespace behind a veth link that the test takes
# down and up again. siteprobe and Chromium run in a namespace of their own, so nothing the browser
# does can reach the host's network. Screenshots go to $STATUS_SHOTS (default: not kept).
source "$(dirname "$0")/lib.sh"
need_root
need_netns
command -v chromium >/dev/null || fail "chromium not installed (scripts/install-deps.sh)"
/usr/bin/python3 -c 'import websocket' 2>/dev/null || fail "python3-websocket not installed (scripts/install-deps.sh)"

A=spsa$$ B=spsb$$
for ns in "$A" "$B"; do ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); done
ip link add sa$$ netns "$A" type veth peer name sb$$ netns "$B"
ip -n "$A" addr add 10.199.0.1/30 dev sa$$; ip -n "$B" addr add 10.199.0.2/30 dev sb$$
for l in "$A sa$$" "$B sb$$" "$A lo" "$B lo"; do ip -n "${l% *}" link set "${l#* }" up; done
ip -n "$A" route add 10.199.0.0/16 via 10.199.0.2
# As scripts/demo.sh: Pác Nặm's addresses move to 10.199.x behind the link; faster rounds (2 s) so
# the test sees down and up again in seconds.
/usr/bin/python3 scripts/demo-netns-inventory.py --fast config/bac-kan.yml "$TMP/inv.yml" >"$TMP/addresses"
while read -r a; do ip -n "$B" addr add "$a/32" dev lo; done <"$TMP/addresses"

SP_NETNS=$A
start_siteprobe "$TMP/inv.yml"
ip netns exec "$A" /usr/bin/python3 "$(dirname "$0")/status_page.py" --url "$SP_URL" --pid "$SP_PID" \
  --down "ip -n $B link set sb$$ down" --up "ip -n $B link set sb$$ up" --district pac-nam \
  --profile "$TMP/chromium" ${STATUS_SHOTS:+--shots "$STATUS_SHOTS"}
# `siteprobe readiness --lang vi|en`: the same table in either language (exit 1: some not ready).
in_ns "$SP_BIN" readiness --url "$SP_URL" --lang vi >"$TMP/rd-vi" || [ $? = 1 ] || fail "readiness --lang vi"
in_ns "$SP_BIN" readiness --url "$SP_URL" --lang en >"$TMP/rd-en" || [ $? = 1 ] || fail "readiness --lang en"
grep -q "thiết bị đầu cuối CHƯA SẴN SÀNG" "$TMP/rd-vi" || fail "readiness --lang vi: $(head -3 "$TMP/rd-vi")"
grep -q "endpoints NOT READY" "$TMP/rd-en" || fail "readiness --lang en: $(head -3 "$TMP/rd-en")"
pass "siteprobe readiness --lang vi and en"
pass "status page: states as /metrics, Pác Nặm down and its communes unreachable, live within 2 s, vi and en"
