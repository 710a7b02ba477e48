#!/usr/bin/env bash
# SIP OPTIONS, H.323 and TCP probes against real peers on loopback, and endpoint readiness:
# - sipp (Debian sip-tester) as a UDP UAS answers 200, then 503, then not at all (SIGSTOP: timeouts),
#   then is gone (killed: ICMP port unreachable, "refused");
# - sipp as a TCP UAS answers 200, then is killed (connection refused);
# - a python TCP listener stands in for an MCU's H.323 port 1720, then goes away;
# - `siteprobe readiness` and /readiness say, by district, which endpoint is not ready and why.
source "$(dirname "$0")/lib.sh"
need_root
command -v sipp >/dev/null || fail "sipp not found (apt-get install -y sip-tester)"
SCEN=$(cd "$(dirname "$0")/sipp" && pwd)

UDP_PORT=$(free_port)
TCP_PORT=$(free_port)
H323_PORT=$(free_port)
CLOSED_PORT=$(free_port)

sipp_uas() {  # sipp_uas SCENARIO PORT TRANSPORT -> pid in $!
  sipp -sf "$SCEN/$1.xml" -i 127.0.0.1 -p "$2" -t "$3" -nostdin -trace_err -error_file "$TMP/sipp-$2.err" \
    >>"$TMP/sipp.log" 2>&1 &
}
listener() {  # a TCP listener that accepts and closes, like an idle H.225 port
  python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()' "$1" &
}

sipp_uas options-200 "$UDP_PORT" u1
UDP_SIPP=$!
CLEANUPS+=("kill -CONT $UDP_SIPP; kill -KILL $UDP_SIPP")
sipp_uas options-200 "$TCP_PORT" t1
TCP_SIPP=$!
CLEANUPS+=("kill -KILL $TCP_SIPP")
listener "$H323_PORT"
H323=$!
CLEANUPS+=("kill $H323")

cat >"$TMP/inv.yml" <<YAML
defaults:
  icmp: {interval: 1s, timeout: 500ms, packets: 3, spacing: 100ms}
  sip: {interval: 1s, timeout: 800ms}
  h323: {interval: 1s, timeout: 500ms}
site_state: {down_after: 1, up_after: 1, window: 2}
sites:
  - id: bac-kan
    name: Tỉnh Bắc Kạn
    level: province
    devices:
      - {name: router, address: 127.0.0.1, role: router}
      - {name: mcu, address: 127.0.0.1, role: mcu, sip: {enabled: false}, h323: {port: $H323_PORT},
         tcp: [{name: web, port: $H323_PORT, interval: 1s, timeout: 500ms}, {name: ssh, port: $CLOSED_PORT, interval: 1s, timeout: 500ms}]}
  - id: ba-be
    name: Huyện Ba Bể
    level: district
    parent: bac-kan
    devices:
      - {name: router, address: 127.0.0.1, role: router}
      - {name: vc, address: 127.0.0.1, role: vc_endpoint, sip: {port: $UDP_PORT}, h323: {enabled: false}}
      - {name: vc-tcp, address: 127.0.0.1, role: vc_endpoint, sip: {port: $TCP_PORT, transport: tcp}, h323: {enabled: false}}
YAML
"$SP_BIN" check "$TMP/inv.yml"
start_siteprobe "$TMP/inv.yml"
VC='site="ba-be",device="vc"'
VCT='site="ba-be",device="vc-tcp"'
MCU='site="bac-kan",device="mcu"'

# Every label set exists from load.
snapshot
for m in siteprobe_sip_up siteprobe_sip_requests_total siteprobe_sip_rtt_seconds_count siteprobe_endpoint_ready; do
  [ "$(metric $m "$VC")" != absent ] || fail "$m missing at load"
done
# (Values may already be counting: the first requests start within the first second.)
[ "$(metric siteprobe_tcp_up "$MCU,service=\"h323\",port=\"$H323_PORT\"")" != absent ] || fail "h323 series"
# Response classes, error kinds and not-ready reasons have a series only once they occur (issue #12).
[ "$(grep -c "^siteprobe_endpoint_not_ready_reason{.*$VC" "$SNAPSHOT")" -le 1 ] || fail "several reasons"
[ "$(metric siteprobe_endpoint_ready 'device="router"')" = absent ] || fail "a router is not an endpoint"
unsnap
pass "SIP, TCP and readiness series exist from load"

# 1. sipp answers 200 over UDP and TCP; the H.323 port accepts.
wait_for 'v == 1' siteprobe_sip_up "$VC" 10
wait_for 'v == 200' siteprobe_sip_response_code "$VC" 5
wait_for 'v == 1' siteprobe_sip_up "$VCT" 10
wait_for 'v == 1' siteprobe_tcp_up "$MCU,service=\"h323\"" 10
wait_for 'v == 1' siteprobe_tcp_up "$MCU,service=\"web\"" 10
wait_for 'v >= 1' siteprobe_tcp_errors_total "$MCU,service=\"ssh\",kind=\"refused\"" 10
wait_for 'v == 1' siteprobe_endpoint_ready "$VC" 15
wait_for 'v == 1' siteprobe_endpoint_ready "$VCT" 10
wait_for 'v == 1' siteprobe_endpoint_ready "$MCU" 10
# Two answers at 1 s intervals: the checks above can all pass within the first second.
wait_for 'v >= 2' siteprobe_sip_responses_total "$VC,class=\"2xx\"" 5
snapshot
ge "$(metric siteprobe_sip_responses_total "$VC,class=\"2xx\"")" 2 || fail "2xx not counted"
ge "$(metric siteprobe_sip_rtt_seconds_count "$VC")" 2 || fail "SIP RTT histogram empty"
ge "$(metric siteprobe_tcp_connect_seconds_count "$MCU,service=\"h323\"")" 1 || fail "connect histogram empty"
[ "$(metric siteprobe_sip_errors_total "$VC,kind=\"timeout\"")" = absent ] || fail "timeouts against a live UAS"
[ "$(metric siteprobe_sip_invalid_responses_total 'reason="unmatched"')" = 0 ] || fail "unmatched responses from sipp"
[ "$(metric siteprobe_sip_invalid_responses_total 'reason="malformed"')" = 0 ] || fail "malformed responses from sipp"
unsnap
out=$("$SP_BIN" readiness --url "$SP_URL") || fail "readiness exit $? with all ready: $out"
grep -q "all 3 endpoints READY" <<<"$out" || fail "readiness: $out"
[ "$(metric siteprobe_endpoint_not_ready_reason "$VC")" = absent ] || fail "a reason series while ready"
[ "$(metric siteprobe_sip_responses_total "$VC,class=\"6xx\"")" = absent ] || fail "a 6xx series before any 6xx"
pass "200 over UDP and TCP, H.323 accepting: all 3 endpoints ready"

# 2. sipp answers 503: SIP down, the endpoint is not ready because of its call service.
kill -KILL "$UDP_SIPP"; wait "$UDP_SIPP" 2>/dev/null || true
sipp_uas options-503 "$UDP_PORT" u1
UDP_SIPP=$!
CLEANUPS+=("kill -CONT $UDP_SIPP; kill -KILL $UDP_SIPP")
wait_for 'v == 503' siteprobe_sip_response_code "$VC" 10
wait_for 'v == 0' siteprobe_sip_up "$VC" 5
wait_for 'v >= 1' siteprobe_sip_responses_total "$VC,class=\"5xx\"" 5
wait_for 'v == 1' siteprobe_endpoint_not_ready_reason "$VC,reason=\"call_service_down\"" 5
[ "$(metric siteprobe_endpoint_ready "$VC")" = 0 ] || fail "ready with SIP 503"
rc=0; out=$("$SP_BIN" readiness --url "$SP_URL") || rc=$?
echo "$out"
[ $rc -eq 1 ] || fail "readiness exit $rc, wanted 1"
grep -q "1 of 3 endpoints NOT READY" <<<"$out" || fail "summary line"
grep -q "^Huyện Ba Bể (ba-be): 1 not ready" <<<"$out" || fail "district group"
grep -E "Huyện Ba Bể \(ba-be\) +vc +call service down +SIP 503" <<<"$out" >/dev/null || fail "row for vc"
pass "503: sip_up 0, code 503, 5xx counted, endpoint not ready (call service down), readiness table"

# 3. sipp stops answering at all (SIGSTOP: the socket stays, nobody reads): timeouts.
kill -STOP "$UDP_SIPP"
t0=$(metric siteprobe_sip_errors_total "$VC,kind=\"timeout\"")
[ "$t0" != absent ] || t0=0  # no series before the first timeout
wait_for "v >= $t0 + 2" siteprobe_sip_errors_total "$VC,kind=\"timeout\"" 10
[ "$(metric siteprobe_sip_response_code "$VC")" = 0 ] || fail "response code after a timeout"
curl -fsS "$SP_URL/readiness" >/dev/null 2>&1 && fail "/readiness returned 200 with an endpoint not ready"
curl -sS "$SP_URL/readiness" | grep -q "SIP timeout" || fail "/readiness does not say SIP timeout"
pass "no answer: timeouts counted, /readiness 503 with SIP timeout"

# 4. sipp is gone: the kernel's port unreachable makes it "refused" at once.
kill -CONT "$UDP_SIPP"; kill -KILL "$UDP_SIPP"; wait "$UDP_SIPP" 2>/dev/null || true
r0=$(metric siteprobe_sip_errors_total "$VC,kind=\"refused\"")
[ "$r0" != absent ] || r0=0  # no series before the first refused
wait_for "v >= $r0 + 2" siteprobe_sip_errors_total "$VC,kind=\"refused\"" 10
pass "UAS killed: refused (ICMP port unreachable)"

# 5. TCP: the UAS and the H.323 listener go away.
kill -KILL "$TCP_SIPP"; wait "$TCP_SIPP" 2>/dev/null || true
kill "$H323"; wait "$H323" 2>/dev/null || true
wait_for 'v >= 1' siteprobe_sip_errors_total "$VCT,kind=\"refused\"" 10
wait_for 'v == 0' siteprobe_sip_up "$VCT" 5
wait_for 'v >= 1' siteprobe_tcp_errors_total "$MCU,service=\"h323\",kind=\"refused\"" 10
wait_for 'v == 0' siteprobe_tcp_up "$MCU,service=\"h323\"" 5
wait_for 'v == 1' siteprobe_endpoint_not_ready_reason "$MCU,reason=\"call_service_down\"" 5
out=$("$SP_BIN" readiness --url "$SP_URL") || true
grep -q "3 of 3 endpoints NOT READY" <<<"$out" || fail "readiness: $out"
grep -E "Tỉnh Bắc Kạn \(bac-kan\) +mcu +call service down +H.323 refused" <<<"$out" >/dev/null || fail "row for the mcu: $out"
pass "TCP UAS and H.323 port gone: refused, endpoints not ready"

rc=0; "$SP_BIN" readiness --url "http://127.0.0.1:$CLOSED_PORT" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "readiness against nothing: exit $rc, wanted 2"
kill -0 "$SP_PID" || fail "siteprobe died"
pass "readiness exits 2 when no daemon answers"
