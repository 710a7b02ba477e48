#!/usr/bin/env bash
# A misbehaving SIP UAS on loopback (made by this test) answers every OPTIONS with garbage:
# truncated responses, a wrong Call-ID, huge headers, bytes that are not UTF-8, bare LF line ends,
# empty and oversized datagrams. Each is counted (malformed or unmatched) and dropped; the good
# answer that follows on every other request still counts; siteprobe never crashes (the ASan build
# runs this too).
source "$(dirname "$0")/lib.sh"
need_root

PORT=$(free_port)
cat >"$TMP/evil.py" <<'PY'
import re, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
n = 0
while True:
    data, peer = s.recvfrom(65535)
    req = data.decode("latin-1")
    head = lambda name: re.search(r"^" + name + r": (.*)$", req, re.M | re.I).group(1).strip()
    def resp(code="200 OK", call_id=None, extra="", cseq=None):
        return ("SIP/2.0 %s\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=evil\r\nCall-ID: %s\r\nCSeq: %s\r\n%s"
                "Content-Length: 0\r\n\r\n" % (code, head("Via"), head("From"), head("To"),
                call_id or head("Call-ID"), cseq or head("CSeq"), extra)).encode("latin-1")
    n += 1
    good = resp()
    if n % 2:
        for bad in (good[:40],                                   # truncated before the Call-ID
                    resp(call_id="not-yours@elsewhere"),         # well-formed, wrong Call-ID
                    b"\xff\xfe\x00garbage \xc3\x28 not SIP\r\n\r\n",  # not UTF-8, not SIP
                    good.replace(b"\r\n", b"\n"),                # missing CRLF
                    b"",                                         # empty datagram
                    resp(code="200 OK").replace(b"z9hG4bK", b"z9hG4bKforged")):  # right Call-ID, wrong branch
            s.sendto(bad, peer)
        s.sendto(good, peer)                                     # then the real answer
    else:
        # Huge headers with the right Call-ID: malformed, blamed on the request; the good answer
        # after it is late (unmatched).
        s.sendto(resp(extra="X-Pad: %s\r\n" % ("a" * 30000)), peer)
        s.sendto(good, peer)
PY
python3 "$TMP/evil.py" "$PORT" &
EVIL=$!
CLEANUPS+=("kill $EVIL")

cat >"$TMP/inv.yml" <<YAML
defaults:
  icmp: {interval: 1s, timeout: 500ms, packets: 2, spacing: 100ms}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: vc, address: 127.0.0.1, role: vc_endpoint, h323: {enabled: false},
         sip: {port: $PORT, interval: 1s, timeout: 900ms}}
YAML
start_siteprobe "$TMP/inv.yml"
VC='site="bk",device="vc"'

wait_for 'v >= 6' siteprobe_sip_requests_total "$VC" 15
sleep 1
snapshot
malformed=$(metric siteprobe_sip_invalid_responses_total 'reason="malformed"')
unmatched=$(metric siteprobe_sip_invalid_responses_total 'reason="unmatched"')
blamed=$(metric siteprobe_sip_errors_total "$VC,kind=\"malformed\"")
ok=$(metric siteprobe_sip_responses_total "$VC,class=\"2xx\"")
reqs=$(metric siteprobe_sip_requests_total "$VC")
unsnap
echo "requests=$reqs 2xx=$ok malformed(dropped)=$malformed unmatched(dropped)=$unmatched malformed(blamed on the request)=$blamed"
# Per odd request: truncated, garbage, bare LF and empty are malformed; the wrong Call-ID and the
# forged branch are unmatched. Per even request: the huge one is blamed, the late good one unmatched.
ge "$malformed" 8 || fail "malformed datagrams not counted: $malformed"
ge "$unmatched" 5 || fail "unmatched datagrams not counted: $unmatched"
ge "$blamed" 2 || fail "huge-header responses not blamed on their requests: $blamed"
ge "$ok" 2 || fail "the good answers after the garbage were lost: $ok"
python3 -c "import sys; r,o,b=map(float,sys.argv[1:]); sys.exit(0 if o + b <= r else 1)" "$reqs" "$ok" "$blamed" ||
  fail "more outcomes than requests"
kill -0 "$SP_PID" || fail "siteprobe died"
curl -fsS "$SP_URL/-/healthy" >/dev/null || fail "not healthy"
pass "malformed and unmatched responses counted and dropped; good answers still count; no crash"
