#!/usr/bin/env bash
# SNMP benchmark: siteprobe vs prometheus-snmp-exporter (same snmpd, same OIDs, interleaved
# rounds, same polls), tool CPU and snmpd (agent) CPU per device poll; then siteprobe alone at 1k
# and 10k devices. Loopback only. See bench/snmp/README.md for the method.
#
#   sudo bench/snmp/run.sh
#   sudo NS="" REPEAT=3 WINDOW=20 POLL_DEVICES=300 bench/snmp/run.sh   # skip the scale part
set -euo pipefail
for c in snmpd snmpget prometheus-snmp-exporter python3; do
  command -v "$c" >/dev/null || { echo "run.sh: $c missing: apt-get install -y snmpd snmp prometheus-snmp-exporter" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # siteprobe needs few: this only shows it
exec python3 "$(dirname "$0")/bench.py"
