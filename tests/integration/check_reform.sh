#!/usr/bin/env bash
# The post-reform inventory (issue #15): config/thai-nguyen.yml is what its generator writes and
# passes `check`; `check --diff config/bac-kan.yml config/thai-nguyen.yml` lists the reform for the
# change ticket; the daemon runs on it in the demo's loopback mode (scripts/demo-endpoints.py) and
# exports siteprobe_site_alias_info for the formerly ids.
source "$(dirname "$0")/lib.sh"
ROOT=$(pwd)

python3 scripts/gen-thai-nguyen.py >"$TMP/gen.yml"
cmp -s "$TMP/gen.yml" config/thai-nguyen.yml || fail "config/thai-nguyen.yml differs from scripts/gen-thai-nguyen.py's output"
out=$("$SP_BIN" check config/thai-nguyen.yml)
echo "$out"
echo "$out" | grep -q "93 sites (1 province, 92 commune)" || fail "summary: $out"
[ "$(grep -c '^    name: Phường ' config/thai-nguyen.yml)" = 15 ] || fail "not 15 phường"
[ "$(grep -c '^    name: Xã ' config/thai-nguyen.yml)" = 77 ] || fail "not 77 xã"
n=$(grep -c '^    labels: {contact: "[^"]*(ví dụ)", circuit: EX-TNG-[A-Z0-9-]*}$' config/thai-nguyen.yml)
[ "$n" = 93 ] || fail "thai-nguyen.yml: $n of 93 sites have sample contact and circuit labels"
# Both shipped inventories run at once: no stand-in address in both.
both=$(comm -12 <(grep -o 'address: 127[0-9.]*' config/bac-kan.yml | sort -u) \
                <(grep -o 'address: 127[0-9.]*' config/thai-nguyen.yml | sort -u))
[ -z "$both" ] || fail "addresses in both inventories: $both"
pass "thai-nguyen.yml: generated, valid, 1 + 92 sites (15 phường, 77 xã), labels, own addresses"

set +e
"$SP_BIN" check --diff config/bac-kan.yml config/thai-nguyen.yml >"$TMP/diff" 2>"$TMP/diff.err"; rc=$?
set -e
cat "$TMP/diff"
[ $rc -eq 0 ] || fail "check --diff exited $rc: $(cat "$TMP/diff.err")"
want() { grep -qxF -- "$1" "$TMP/diff" || fail "check --diff: no line \"$1\""; }
want "--- config/bac-kan.yml"
want "+++ config/thai-nguyen.yml"
want "renamed/merged (38):"
want "  renamed: bac-kan (Tỉnh Bắc Kạn) → thai-nguyen (Tỉnh Thái Nguyên)"
want "  renamed: ngan-son.thuong-quan (Xã Thượng Quan) → thai-nguyen.thuong-quan (Xã Thượng Quan)"
want "  merged:  pac-nam.bang-thanh (Xã Bằng Thành) + pac-nam.boc-bo (Xã Bộc Bố) + pac-nam.nhan-mon (Xã Nhạn Môn) + pac-nam.giao-hieu (Xã Giáo Hiệu) → thai-nguyen.bang-thanh (Xã Bằng Thành)"
want "  merged:  ba-be.cao-thuong (Xã Cao Thượng) + ba-be.nam-mau (Xã Nam Mẫu) + ba-be.khang-ninh (Xã Khang Ninh) → thai-nguyen.ba-be (Xã Ba Bể)"
want "  merged:  ba-be.dong-phuc (Xã Đồng Phúc) + ba-be.quang-khe (Xã Quảng Khê) + ba-be.hoang-tri (Xã Hoàng Trĩ) + cho-don.bang-phuc (Xã Bằng Phúc) → thai-nguyen.dong-phuc (Xã Đồng Phúc)"
want "added (55):"
want "  + thai-nguyen.phan-dinh-phung (Phường Phan Đình Phùng)"
want "  + thai-nguyen.sang-moc (Xã Sảng Mộc)"
want "removed (8):"
for d in "ba-be (Huyện Ba Bể)" "bach-thong (Huyện Bạch Thông)" "cho-don (Huyện Chợ Đồn)" "cho-moi (Huyện Chợ Mới)" \
         "na-ri (Huyện Na Rì)" "ngan-son (Huyện Ngân Sơn)" "pac-nam (Huyện Pác Nặm)" "tp-bac-kan (Thành phố Bắc Kạn)"; do
  want "  - $d"
done
want "55 added, 8 removed, 2 renamed, 36 merged, 0 re-parented, 0 changed"
# Removed lists only the districts: every commune lives on through a formerly.
[ "$(grep -c '^  - ' "$TMP/diff")" = 8 ] || fail "check --diff removed more than the 8 districts"
pass "check --diff bac-kan.yml thai-nguyen.yml: 38 renamed/merged, 55 added, the 8 districts removed"

# A re-parented and renamed site: Xã Bành Trạch moved under Huyện Pác Nặm and renamed, in a copy.
python3 - config/bac-kan.yml "$TMP/moved.yml" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
old = "  - id: ba-be.banh-trach\n    name: Xã Bành Trạch\n    level: commune\n    parent: ba-be\n"
assert old in text
text = text.replace(old, old.replace("parent: ba-be", "parent: pac-nam").replace("Xã Bành Trạch", "Xã Bành Trạch Mới"))
open(sys.argv[2], "w", encoding="utf-8").write(text)
PY
"$SP_BIN" check --diff config/bac-kan.yml "$TMP/moved.yml" >"$TMP/diff" 2>/dev/null || fail "check --diff on a copy"
want "  ba-be.banh-trach (Xã Bành Trạch Mới): parent ba-be → pac-nam"
want "  ba-be.banh-trach: name \"Xã Bành Trạch\" → \"Xã Bành Trạch Mới\""
want "0 added, 0 removed, 0 renamed, 0 merged, 1 re-parented, 1 changed"
pass "check --diff: re-parented and renamed in place"

printf 'sites:\n  - {id: p, name: P, level: province, formerly: [p]}\n' >"$TMP/bad.yml"
set +e
"$SP_BIN" check --diff config/bac-kan.yml "$TMP/bad.yml" >"$TMP/diff" 2>"$TMP/diff.err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "check --diff with an invalid NEW exited $rc"
grep -qF "$TMP/bad.yml:2:50: sites[0].formerly[0]: \"p\" is a site id in this file" "$TMP/diff.err" ||
  fail "no formerly error: $(cat "$TMP/diff.err")"
grep -q 'renamed/merged\|added' "$TMP/diff" && fail "a diff printed for an invalid file"
set +e; "$SP_BIN" check --diff config/bac-kan.yml >/dev/null 2>&1; rc=$?; set -e
[ $rc -eq 2 ] || fail "check --diff with one file exited $rc"
pass "check --diff: invalid file exit 1 with FILE:LINE:COL, usage exit 2"

# The daemon on the new inventory, in the demo's loopback mode.
need_root
command -v snmpd >/dev/null || fail "snmpd missing (apt-get install -y snmpd)"
python3 "$ROOT/scripts/demo-endpoints.py" "$ROOT/config/thai-nguyen.yml" 2>"$TMP/endpoints.log" &
ENDPOINTS=$!
CLEANUPS+=("kill -TERM $ENDPOINTS; wait $ENDPOINTS")
start_siteprobe config/thai-nguyen.yml
# Two ICMP rounds (10 s interval, up after 2 good rounds) and the SIP checks have run.
for _ in $(seq 1 60); do
  [ "$(scrape | grep -c '^siteprobe_site_state{.*} 1$')" -ge 90 ] && break
  sleep 0.5
done
snapshot
n=$(grep -c '^siteprobe_site_state{' "$SNAPSHOT")
[ "$n" = 93 ] || fail "$n siteprobe_site_state series, want 93"
up=$(grep -c '^siteprobe_site_state{.*} 1$' "$SNAPSHOT")
[ "$up" -ge 90 ] || fail "only $up of 93 sites up"
a=$(grep -c '^siteprobe_site_alias_info{' "$SNAPSHOT")
[ "$a" = 109 ] || fail "$a siteprobe_site_alias_info series, want 109 (108 communes + the province)"
[ "$(metric siteprobe_site_alias_info 'site="thai-nguyen.bang-thanh",formerly="pac-nam.boc-bo",level="commune",province="thai-nguyen"')" = 1 ] ||
  fail "no alias series for Bộc Bố in Bằng Thành"
[ "$(metric siteprobe_site_alias_info 'site="thai-nguyen",formerly="bac-kan"')" = 1 ] || fail "no alias series for the province"
[ "$(metric siteprobe_sip_up 'site="thai-nguyen.cho-ra",device="vc"')" = 1 ] || fail "Chợ Rã's vc endpoint does not answer SIP"
pass "daemon on thai-nguyen.yml: 93 site states ($up up), 109 alias series, SIP answered on loopback"
