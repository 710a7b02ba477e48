#!/usr/bin/env bash
# The .deb, installed with dpkg into a clean Debian 12 root (debootstrap minbase plus the
# package's Depends, cached under /var/cache/siteprobe-test): the system user exists, the
# inventory is a conffile and passes `siteprobe check`, and the installed daemon, run the way the
# unit runs it (user siteprobe, only CAP_NET_RAW, ambient + bounding), probes loopback and serves
# /metrics over TLS (libmicrohttpd + GnuTLS) without any -dev package. Then remove and purge.
# Skips (77) in the sanitizer build, without debootstrap, or when the mirror cannot be reached
# and nothing is cached. Mirror: $DEBOOTSTRAP_MIRROR (default http://deb.debian.org/debian).
source "$(dirname "$0")/lib.sh"
need_root
BUILD=$(cd "$(dirname "$SP_BIN")/.." && pwd)
if grep -q '^SITEPROBE_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  echo "SKIP: sanitizer build (the package test runs in the plain build)"; exit 77
fi
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap not installed"; exit 77; }
grep -q '^CMAKE_INSTALL_PREFIX:PATH=/usr$' "$BUILD/CMakeCache.txt" || fail "build not configured for /usr"

(cd "$TMP" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP/pkg" >cpack.log 2>&1) ||
  { cat "$TMP/cpack.log"; fail "cpack failed"; }
deb=$(ls "$TMP"/pkg/siteprobe_*.deb)
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep . | sort -u | paste -sd,)
echo "package: $(basename "$deb"), Depends: $deps"

# The packaged binary carries Debian's hardening flags. Control flow integrity is not asked for:
# Debian 12's own binaries lack it too (its crt1.o carries no IBT/SHSTK note).
command -v hardening-check >/dev/null || fail "hardening-check missing (apt-get install devscripts)"
dpkg-deb -x "$deb" "$TMP/extracted"
# It exits non-zero on any "no" not ignored.
hardening-check --nocfprotection "$TMP/extracted/usr/bin/siteprobe" ||
  fail "hardening-check: the packaged binary lacks a hardening flag"
pass "hardening-check: PIE, stack protector, FORTIFY_SOURCE, full RELRO"

# What the docs tell users to install from the package (install.md, alerts.md, dashboards.md).
for f in alerts/siteprobe.rules.yml alerts/siteprobe.sla.rules.yml alerts/alertmanager.yml grafana/provisioning/datasources/siteprobe.yml \
         grafana/provisioning/dashboards/siteprobe.yml; do
  [ -f "$TMP/extracted/usr/share/siteprobe/$f" ] || fail "the package lacks /usr/share/siteprobe/$f"
done
for f in grafana/dashboards/*.json grafana/dashboards/vi/*.json; do
  [ -f "$TMP/extracted/usr/share/siteprobe/$f" ] || fail "the package lacks /usr/share/siteprobe/$f"
done
pass "the package has the alert rules, the Alertmanager example, the dashboards and their provisioning"

# A clean root with those packages, from the cache or a fresh debootstrap.
mirror=${DEBOOTSTRAP_MIRROR:-http://deb.debian.org/debian}
cache=/var/cache/siteprobe-test
key=$(echo "bookworm minbase $deps $mirror" | sha256sum | cut -c1-16)
tarball=$cache/bookworm-minbase-$key.tar.gz
ROOT=$TMP/root
mkdir -p "$ROOT" "$cache"
if [ -f "$tarball" ]; then
  tar -C "$ROOT" -xzf "$tarball"
else
  if ! timeout 900 debootstrap --variant=minbase --include="$deps" bookworm "$ROOT" "$mirror" >"$TMP/debootstrap.log" 2>&1; then
    tail -3 "$TMP/debootstrap.log"
    echo "SKIP: debootstrap from $mirror failed (unreachable?) and no cached root in $cache"; exit 77
  fi
  tar -C "$ROOT" -czf "$tarball.$$" . && mv "$tarball.$$" "$tarball"
fi
in_root() { chroot "$ROOT" "$@"; }
[ ! -e "$ROOT/usr/lib/x86_64-linux-gnu/libssl.so" ] || fail "the clean root has libssl-dev"
in_root getent passwd siteprobe && fail "siteprobe user exists before install"

cp "$deb" "$ROOT/tmp/siteprobe.deb"
in_root dpkg -i /tmp/siteprobe.deb >"$TMP/dpkg.log" 2>&1 || { cat "$TMP/dpkg.log"; fail "dpkg -i failed"; }
in_root getent passwd siteprobe | grep -q ':/nonexistent:/usr/sbin/nologin$' || fail "no system user siteprobe"
[ "$(in_root stat -c '%U:%G %a' /etc/siteprobe/secrets)" = "root:siteprobe 750" ] || fail "secrets dir"
inv_mode() { in_root stat -c '%U:%G %a' /etc/siteprobe/inventory.yml; }
[ "$(inv_mode)" = "root:siteprobe 640" ] || fail "inventory is $(inv_mode), not root:siteprobe 640"
# shellcheck disable=SC2016 # ${Conffiles} is dpkg-query's format field, not a shell expansion
conf=$(in_root dpkg-query -W -f='${Conffiles}' siteprobe)
for f in /etc/siteprobe/inventory.yml /etc/default/siteprobe; do
  echo "$conf" | grep -q "^ $f " || fail "$f is not a conffile"
done
[ -f "$ROOT/lib/systemd/system/siteprobe.service" ] || fail "unit not installed"
out=$(in_root siteprobe check /etc/siteprobe/inventory.yml) || fail "siteprobe check failed in the clean root"
[[ "$out" == "/etc/siteprobe/inventory.yml: OK: 117 sites (1 province, 8 district, 108 commune), 236 devices, "* ]] ||
  fail "check said: $out"
pass "dpkg -i in a clean root: user, conffiles, unit; $out"

# Run it as the unit does, with a TLS web config.
small_inventory "$ROOT/etc/siteprobe/test.yml"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$ROOT/etc/siteprobe/tls.key" -out "$ROOT/etc/siteprobe/tls.crt" 2>/dev/null
in_root chgrp siteprobe /etc/siteprobe/tls.key
chmod 640 "$ROOT/etc/siteprobe/tls.key"
printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n' >"$ROOT/etc/siteprobe/web.yml"
port=$(free_port)
chroot "$ROOT" setpriv --reuid=siteprobe --regid=siteprobe --init-groups --inh-caps=-all,+net_raw \
  --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw \
  /usr/bin/siteprobe --config /etc/siteprobe/test.yml --web.config.file /etc/siteprobe/web.yml \
  --web.listen-address "127.0.0.1:$port" >"$TMP/siteprobe.log" 2>&1 &
SP_PID=$!
SP_URL=https://127.0.0.1:$port
scrape() { curl -fsS --cacert "$ROOT/etc/siteprobe/tls.crt" "$SP_URL/metrics"; }
wait_for 'v >= 2' siteprobe_icmp_packets_received_total 'device="r1"' 15
grep -q 'mode="ipv4=raw' "$TMP/siteprobe.log" || fail "no raw ICMP socket with CAP_NET_RAW"
uid=$(awk '/^Uid:/ {print $2}' "/proc/$SP_PID/status")
[ "$uid" = "$(in_root id -u siteprobe)" ] || fail "daemon runs as uid $uid"
kill -TERM "$SP_PID"; wait "$SP_PID" || fail "siteprobe exited non-zero"; SP_PID=""
pass "installed daemon as user siteprobe with only CAP_NET_RAW: raw ICMP, /metrics over TLS without libssl-dev"

# Reinstalling (an upgrade) over an edited inventory: dpkg keeps the file, postinst fixes the old
# default mode 0644 root:root and keeps a mode the admin chose.
echo "# edited by the admin" >>"$ROOT/etc/siteprobe/inventory.yml"
in_root chown root:root /etc/siteprobe/inventory.yml
in_root chmod 644 /etc/siteprobe/inventory.yml
in_root dpkg -i /tmp/siteprobe.deb >/dev/null 2>&1 || fail "dpkg -i (again) failed"
[ "$(inv_mode)" = "root:siteprobe 640" ] || fail "upgrade left the inventory $(inv_mode)"
in_root chmod 600 /etc/siteprobe/inventory.yml
in_root dpkg -i /tmp/siteprobe.deb >/dev/null 2>&1 || fail "dpkg -i (again) failed"
[ "$(inv_mode)" = "root:siteprobe 600" ] || fail "upgrade changed the admin's mode to $(inv_mode)"
pass "inventory root:siteprobe 640 on install and over the old 0644; an admin's mode is kept"

in_root dpkg -r siteprobe >/dev/null 2>&1 || fail "dpkg -r failed"
[ ! -e "$ROOT/usr/bin/siteprobe" ] || fail "binary left after remove"
[ -f "$ROOT/etc/siteprobe/inventory.yml" ] || fail "conffile removed by dpkg -r"
in_root dpkg --purge siteprobe >/dev/null 2>&1 || fail "dpkg --purge failed"
{ [ ! -e "$ROOT/etc/siteprobe/inventory.yml" ] && [ ! -e "$ROOT/etc/default/siteprobe" ]; } || fail "conffiles left after purge"
pass "dpkg -r keeps the conffiles, dpkg --purge removes them"
