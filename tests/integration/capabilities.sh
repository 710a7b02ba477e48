#!/usr/bin/env bash
# CAP_NET_RAW is held only while the ICMP sockets are opened (issue #20, item 7): after start,
# /proc/PID/status shows it in none of the effective, permitted, inheritable and ambient sets,
# while raw ICMP keeps working, and a reload that adds an IPv6 device needs no capability (the
# sockets of both families are opened at start and never reopened). Run as the unit runs it
# (user nobody, CAP_NET_RAW ambient) and as root.
source "$(dirname "$0")/lib.sh"
need_root
command -v setpriv >/dev/null || fail "setpriv missing (util-linux)"
chmod 755 "$TMP"
small_inventory "$TMP/inv.yml"
chmod 644 "$TMP/inv.yml"
cp "$TMP/inv.yml" "$TMP/inv-v4.yml"

# cap_sets PID: the Cap* lines of /proc/PID/status that hold CAP_NET_RAW (bit 13), if any.
cap_sets() {
  local k v
  while read -r k v; do
    case $k in CapInh: | CapPrm: | CapEff: | CapAmb:) if ((0x$v & 1 << 13)); then printf '%s ' "${k%:}"; fi ;; esac
  done <"/proc/$1/status"
}

# run_as NAME PREFIX...: starts siteprobe under PREFIX, checks raw ICMP and the capability sets.
run_as() {
  local name=$1; shift
  cp "$TMP/inv-v4.yml" "$TMP/inv.yml"
  : >"$TMP/siteprobe.log"
  SP_PORT=$(free_port); SP_URL="http://127.0.0.1:$SP_PORT"
  "$@" "$SP_BIN" --config "$TMP/inv.yml" --web.listen-address "127.0.0.1:$SP_PORT" >>"$TMP/siteprobe.log" 2>&1 &
  SP_PID=$!
  wait_for 'v == 1' siteprobe_device_up 'device="r1"' 15
  grep -q 'mode="ipv4=raw ipv6=raw"' "$TMP/siteprobe.log" || fail "$name: not on raw sockets"
  echo "$name: $(grep -E '^Cap(Inh|Prm|Eff|Amb)' "/proc/$SP_PID/status" | paste -sd' ')"
  held=$(cap_sets "$SP_PID")
  [ -z "$held" ] || fail "$name: CAP_NET_RAW still in $held"
  small_inventory "$TMP/inv.yml" '{name: r1, address: 127.0.0.1, role: router}' '{name: r6, address: "::1", role: router}'
  kill -HUP "$SP_PID"
  wait_for 'v == 1' siteprobe_device_up 'device="r6"' 15
  wait_for 'v >= 2' siteprobe_icmp_packets_received_total 'device="r6"' 10
  kill -TERM "$SP_PID"; wait "$SP_PID" || fail "$name: siteprobe exited non-zero"; SP_PID=""
  pass "$name: no CAP_NET_RAW after start; raw ICMP up, and an IPv6 device added by reload is up"
}

run_as "user nobody, ambient CAP_NET_RAW" \
  setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw
run_as root env
