#!/usr/bin/env bash
# SNMP benchmark: siteprobe vs prometheus-snmp-exporter (same snmpd, same OIDs), then siteprobe
# alone at 1k and 10k devices. Loopback only. See bench/snmp/bench.py for the method.
#
#   sudo bench/snmp/run.sh
#   sudo NS="1000" WINDOW=30 bench/snmp/run.sh
set -euo pipefail
for c in snmpd snmpget prometheus-snmp-exporter python3; do
  command -v "$c" >/dev/null || { echo "run.sh: $c missing: apt-get install -y snmpd snmp prometheus-snmp-exporter" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # siteprobe needs few: this only shows it
exec python3 "$(dirname "$0")/bench.py"
