#!/usr/bin/env bash
# Issue #14's loss case, too long for ctest: tests/integration/e2e_vantages.sh (three vantages, a
# Prometheus pair with the quorum rules, a two-peer Alertmanager cluster, 2 % of echo requests
# dropped on every test host) with its quiet phase held for LOSS_MINUTES (default 15) before the
# fault cases. It fails if anything is notified in that time: 2 % random loss must page and warn
# nobody. About LOSS_MINUTES + 6 minutes. Root (namespaces, nftables).
#
#   sudo bench/vantages/loss.sh [SITEPROBE_BINARY]        # default build/daemon/siteprobe
set -euo pipefail
cd "$(dirname "$0")/../.."
LOSS_MINUTES=${LOSS_MINUTES:-15} exec tests/integration/e2e_vantages.sh "${1:-build/daemon/siteprobe}"
