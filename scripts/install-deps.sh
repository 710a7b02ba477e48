#!/usr/bin/env bash
# Installs everything siteprobe needs to build, run its demo and run its tests, from Debian 12
# packages only. Run as root. Safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  # build
  build-essential cmake pkg-config git
  # static checks (scripts/lint.sh)
  clang-format clang-tidy shellcheck pyflakes3
  libuv1-dev libsnmp-dev libre2-dev prometheus-cpp-dev libyaml-cpp-dev catch2 libssl-dev libcrypt-dev
  libmicrohttpd-dev libgnutls28-dev zlib1g-dev
  # the .deb (CPack, dpkg-shlibdeps) and its test in a clean Debian root
  dpkg-dev file debootstrap
  # hardening-check on the packaged binary (tests/integration/deb_install.sh)
  devscripts
  # run and test: real ICMP peers in namespaces, nftables for loss, curl for scrapes
  iproute2 nftables curl python3 procps systemd openssl util-linux
  # the docs served at /docs, rendered at build time (daemon/docs_html.py)
  python3-markdown
  # benchmarks (bench/): the anchors siteprobe is measured against
  fping
  # the status page in a real browser (tests/integration/status_page.sh: headless, DevTools protocol)
  chromium python3-websocket
  # hardening (docs/reliability.md): libFuzzer targets need clang and its runtime; leak checks
  clang libclang-rt-14-dev valgrind
  # the NOC layer: rules, alerting and the dashboards checked against a real Prometheus
  prometheus prometheus-alertmanager snmpd snmp
  # video-conference checks: sipp as a real SIP UAS in the tests
  sip-tester
  # path tests (STAMP): Wireshark's dissector decodes what siteprobe sends (tests/integration/stamp_netns.sh)
  tshark
)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all ${#pkgs[@]} packages present"
