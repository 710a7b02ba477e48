#!/usr/bin/env bash
# The demo: installs dependencies, builds siteprobe and runs it on the reference inventory
# (config/bac-kan.yml: 117 sites of Bắc Kạn province, every address a loopback stand-in) until
# Ctrl-C. Needs root for raw ICMP.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
listen=${SITEPROBE_LISTEN:-127.0.0.1:9723}
build/daemon/siteprobe check config/bac-kan.yml
echo
echo "siteprobe demo: metrics at http://$listen/metrics  (Ctrl-C to stop)"
echo "  try: curl -s http://$listen/metrics | grep 'siteprobe_device_up{' | head"
echo
exec build/daemon/siteprobe --config config/bac-kan.yml --web.listen-address "$listen"
