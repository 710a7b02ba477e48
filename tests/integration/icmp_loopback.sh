#!/usr/bin/env bash
# Real ICMP on loopback: 127.0.0.1, other 127.x addresses, ::1 and a DNS name all answer, with no
# loss; every label set exists from load; UTF-8 names reach the labels; SIGTERM exits 0.
source "$(dirname "$0")/lib.sh"
need_root

cat >"$TMP/inv.yml" <<'YAML'
defaults:
  icmp: {interval: 1s, timeout: 500ms, packets: 5, spacing: 50ms}
sites:
  - id: bac-kan
    name: Tỉnh Bắc Kạn
    level: province
    lat: 22.147
    lon: 105.8348
    devices:
      - {name: router, address: 127.0.0.1, role: router}
      - {name: mcu, address: 127.0.0.2, role: mcu}
      - {name: v6, address: "::1", role: switch}
      - {name: named, address: localhost, role: server}
  - id: ba-be
    name: Huyện Ba Bể
    level: district
    parent: bac-kan
    devices:
      - {name: router, address: 127.1.2.3, role: router}
  - id: ba-be.nam-mau
    name: Xã Nam Mẫu
    level: commune
    parent: ba-be
    devices:
      - {name: vc, address: 127.255.254.253, role: vc_endpoint}
YAML
start_siteprobe "$TMP/inv.yml"

# Every series exists right after load, before any probe has run.
for m in siteprobe_icmp_packets_sent_total siteprobe_icmp_packets_received_total siteprobe_device_up siteprobe_icmp_loss_ratio; do
  [ "$(metric $m 'site="ba-be.nam-mau",device="vc"')" != absent ] || fail "$m missing at load"
done
pass "label sets exist from load"

snapshot
grep -qF 'siteprobe_site_info{district="",latitude="22.147",level="province",longitude="105.8348",map_latitude="22.147",map_longitude="105.8348",name="Tỉnh Bắc Kạn",parent="",province="bac-kan",site="bac-kan"} 1' \
  "$SNAPSHOT" || fail "site_info for the province"
grep -qF 'name="Xã Nam Mẫu"' "$SNAPSHOT" || fail "UTF-8 name"
grep -F 'siteprobe_device_up{' "$SNAPSHOT" | grep -F 'site="ba-be.nam-mau"' | grep -qF 'district="ba-be"' || fail "district label of a commune"
unsnap
pass "site_info, chain labels and Vietnamese names"

sleep 6
devices='bac-kan/router bac-kan/mcu bac-kan/v6 bac-kan/named ba-be/router ba-be.nam-mau/vc'
for d in $devices; do
  l="site=\"${d%/*}\",device=\"${d#*/}\""
  wait_for 'v == 1' siteprobe_device_up "$l" 5
  snapshot
  sent=$(metric siteprobe_icmp_packets_sent_total "$l")
  recv=$(metric siteprobe_icmp_packets_received_total "$l")
  loss=$(metric siteprobe_icmp_loss_ratio "$l")
  count=$(metric siteprobe_icmp_rtt_seconds_count "$l")
  echo "$d sent=$sent received=$recv loss=$loss rtt_count=$count"
  ge "$sent" 20 || fail "$d sent only $sent"
  # The scrape reads each family while the loop goes on probing (as client_golang does), so one
  # round of 5 packets, in flight or counted between two families, is the only difference allowed.
  within5() { python3 -c "import sys; a,b=map(float,sys.argv[1:]); sys.exit(0 if abs(a-b) <= 5 else 1)" "$1" "$2"; }
  within5 "$sent" "$recv" || fail "$d lost packets"
  [ "$loss" = 0 ] || fail "$d loss $loss"
  within5 "$count" "$recv" || fail "$d histogram count $count, received $recv"
  unsnap
done
pass "all loopback targets up, 0 loss (IPv4, IPv6, DNS name)"

for r in cookie source truncated unknown_target; do
  [ "$(metric siteprobe_icmp_invalid_replies_total "reason=\"$r\"")" = 0 ] || fail "invalid replies ($r) on loopback"
done
[ "$(metric siteprobe_icmp_receive_queue_drops_total 'family="ipv4"')" = 0 ] || fail "receive drops"
pass "no invalid replies, no receive drops"

# Raw sockets: requests go out on a second, send-only socket whose ICMP filter blocks every type
# (probes/icmp_socket.cpp). After all these rounds its receive queue is still empty and it dropped
# nothing; the first one, in fd order, reads the replies.
icmp_raw=()
for fd in $(find "/proc/$SP_PID/fd" -mindepth 1 -printf '%f\n' | sort -n); do
  ino=$(readlink "/proc/$SP_PID/fd/$fd" | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
  [ -n "$ino" ] || continue
  line=$(awk -v i="$ino" '$10 == i && $2 ~ /:0001$/' /proc/$SP_PID/net/raw)
  [ -n "$line" ] && icmp_raw+=("$line")
done
[ ${#icmp_raw[@]} = 2 ] || fail "${#icmp_raw[@]} raw ICMP sockets, wanted 2 (receive, send): ${icmp_raw[*]}"
read -r _ _ _ _ queues _ _ _ _ _ _ _ drops <<<"${icmp_raw[1]}"
if [ "${queues#*:}" != 00000000 ] || [ "$drops" != 0 ]; then
  fail "the send-only socket queued replies: ${icmp_raw[1]}"
fi
pass "raw ICMP: a receive socket and a send-only one that never queues a reply"

kill -TERM "$SP_PID"
for _ in $(seq 1 50); do kill -0 "$SP_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SP_PID" 2>/dev/null && fail "still running 5 s after SIGTERM"
wait "$SP_PID" && rc=0 || rc=$?
SP_PID=""
[ "$rc" -eq 0 ] || fail "exit code $rc after SIGTERM"
grep -q 'msg="siteprobe stopped"' "$TMP/siteprobe.log" || fail "no clean stop logged"
pass "SIGTERM: clean shutdown, exit 0"
