#!/usr/bin/env bash
# `siteprobe check` on the reference inventory, on an invalid one, and the flags.
source "$(dirname "$0")/lib.sh"

out=$("$SP_BIN" check config/bac-kan.yml)
echo "$out"
echo "$out" | grep -q "117 sites (1 province, 8 district, 108 commune), 236 devices" || fail "summary: $out"
pass "bac-kan.yml: 1/8/108 sites"
# Who to call (issue 19): every site of the reference inventory has sample contact and circuit
# labels, which the pages quote (alerts/siteprobe.rules.yml).
n=$(grep -c '^    labels: {contact: "[^"]*(ví dụ)", circuit: EX-BKN-[A-Z0-9-]*}$' config/bac-kan.yml)
[ "$n" = 117 ] || fail "bac-kan.yml: $n of 117 sites have sample contact and circuit labels"
pass "bac-kan.yml: sample contact and circuit on all 117 sites"

out=$("$SP_BIN" check config/snmp-example.yml)
echo "$out" | grep -q "4 snmp" || fail "snmp-example.yml: $out"
if echo "$out" | grep -q "example-community\|example-auth-pass\|example-priv-pass"; then fail "check printed a secret"; fi
pass "snmp-example.yml: valid, 4 devices polled over SNMP, no secret printed"

cat >"$TMP/bad.yml" <<'YAML'
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r, address: 300.1.1.1, role: router}
  - id: x
    nmae: typo
    level: district
    parent: nowhere
YAML
set +e
err=$("$SP_BIN" check "$TMP/bad.yml" 2>&1 >/dev/null); rc=$?
set -e
echo "$err"
[ $rc -eq 1 ] || fail "check on an invalid file exited $rc"
echo "$err" | grep -qF "$TMP/bad.yml:6:28: sites[0].devices[0].address: invalid address \"300.1.1.1\"" || fail "no address error"
echo "$err" | grep -qF "$TMP/bad.yml:8:5: sites[1].nmae: unknown key" || fail "no typo error"
echo "$err" | grep -qF "missing required key \"name\"" || fail "no missing-key error"
pass "invalid file: every error listed with file:line:col, exit 1"

"$SP_BIN" --version | grep -Eq '^siteprobe [0-9]+\.[0-9]+\.[0-9]+' || fail "--version"
set +e; "$SP_BIN" --config 2>/dev/null; rc=$?; set -e
[ $rc -eq 2 ] || fail "flag without value exited $rc"
set +e; "$SP_BIN" --config "$TMP/bad.yml" --web.listen-address 127.0.0.1:1 2>"$TMP/err"; rc=$?; set -e
{ [ $rc -eq 1 ] && grep -q "sites\[1\].nmae" "$TMP/err"; } || fail "daemon started on an invalid inventory (rc=$rc)"
pass "flags and startup rejection"
