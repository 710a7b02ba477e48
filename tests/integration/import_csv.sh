#!/usr/bin/env bash
# scripts/import-csv.py: a good spreadsheet export (BOM, semicolons, quoted names with commas,
# several rows per site, a site without devices, IPv6 and DNS addresses) becomes an inventory
# that `siteprobe check` accepts with the expected counts; a bad one lists every error with its
# CSV line number, exits 1 and writes nothing.
source "$(dirname "$0")/lib.sh"
IMPORT=$(cd "$(dirname "$0")/../.." && pwd)/scripts/import-csv.py
cd "$TMP"

printf '\xef\xbb\xbf' >good.csv
cat >>good.csv <<'CSV'
Site ID;Name;Level;Parent;Lat;Lon;Device;Address;Role
bac-kan;Tỉnh Bắc Kạn;province;;22.1470;105.8348;router;127.10.0.1;router
bac-kan;;;;;;core-switch;127.10.0.2;switch
bac-kan;Tỉnh Bắc Kạn;province;;;;mcu;::1;mcu

tp-bac-kan;"Thành phố Bắc Kạn; trung tâm";district;bac-kan;22.147;105.8348;router;127.10.1.1;router
tp-bac-kan;;;;;;vc;localhost;vc_endpoint
tp-bac-kan.song-cau;"Phường ""Sông"" Cầu";commune;tp-bac-kan;0.00001;-0.5;router;127.11.2.1;router
cho-don;Huyện Chợ Đồn;district;bac-kan;;;;;
CSV
python3 "$IMPORT" good.csv -o good.yml || fail "good CSV rejected"
out=$("$SP_BIN" check good.yml) || { cat good.yml; fail "siteprobe check rejects the imported inventory"; }
[[ "$out" == "good.yml: OK: 4 sites (1 province, 2 district, 1 commune), 6 devices, "* ]] ||
  { cat good.yml; fail "unexpected summary: $out"; }
grep -qF 'name: "Phường \"Sông\" Cầu"' good.yml || fail "quoted name mangled"
grep -qF 'lat: 0.00001' good.yml || fail "small latitude not written as a plain decimal"
python3 "$IMPORT" good.csv | cmp - good.yml || fail "stdout and -o differ"
pass "good CSV -> inventory accepted by siteprobe check ($out)"

cat >bad.csv <<'CSV'
site id,name,level,parent,lat,lon,device,address,role
p,Province,province,,,,router,127.0.0.1,router
d1,District 1,district,p,22.1,,router,127.0.0.2,router
d1,District one,district,p,,,router,127.0.0.3,router
d2,District 2,distrct,p,,,router,127.0.0.300,routr
c1,Commune 1,commune,nowhere,,,vc,127.0.0.5,vc_endpoint
bad id!,X,commune,d1,,,r,127.0.0.6,router
c2,,commune,c2,91,0,r,127.0.0.7,router
c3,Commune 3,province,d1,,,r,127.0.0.8,router
c4,Commune 4,commune,d1,,,r,127.0.0.9,router,extra
c5,Commune 5,district,c6,,,r,127.0.0.10,router
c6,Commune 6,commune,c5,,,r,127.0.0.11,router
CSV
if python3 "$IMPORT" bad.csv -o bad.yml 2>err.txt; then fail "bad CSV accepted"; fi
[ ! -e bad.yml ] || fail "an inventory was written for a bad CSV"
cat err.txt
cat >want.txt <<'TXT'
bad.csv:3: site d1: give both lat and lon, or neither
bad.csv:4: site d1: name "District one" differs from "District 1" on line 3
bad.csv:4: site d1: duplicate device "router" (first on line 3)
bad.csv:5: site d2: unknown level "distrct" (allowed: province, district, commune)
bad.csv:5: site d2: device router: invalid address "127.0.0.300" (IPv4, IPv6 or DNS name)
bad.csv:5: site d2: device router: unknown role "routr" (allowed: firewall, mcu, other, router, server, switch, vc_endpoint)
bad.csv:6: site c1: unknown parent "nowhere" (no row has this site id)
bad.csv:7: site id "bad id!": use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit
bad.csv:8: site c2: name is empty
bad.csv:8: site c2: is its own parent
bad.csv:8: site c2: lat "91" is not a number in -90..90
bad.csv:9: site c3: level province is not below its parent's (district)
bad.csv:10: 10 fields, the header has 9
bad.csv:11: site c5: level district is not below its parent's (commune)
bad.csv:11: site c5: parent cycle
bad.csv:12: site c6: parent cycle
bad.csv: FAILED: 16 errors
TXT
diff -u want.txt err.txt || fail "errors differ from the expected list"
pass "bad CSV: all 16 errors with line numbers, exit 1, nothing written"

printf 'site,name\n' >header.csv
python3 "$IMPORT" header.csv 2>err.txt && fail "bad header accepted"
grep -qx 'header.csv:1: warning: unknown column "site" ignored (allowed: site id, name, level, parent, lat, lon, device, address, role)' err.txt ||
  { cat err.txt; fail "bad header error"; }
grep -qx 'header.csv:1: missing columns: site id, level, device, address, role' err.txt || fail "missing columns error"
pass "bad header: unknown and missing columns named"

# Vietnamese Excel exports: decimal commas, a notes column, a shared address, legacy encodings.
printf 'Site ID;Name;Level;Parent;Lat;Lon;Device;Address;Role;Ghi chú\n' >vn.csv
printf 'bk;Tỉnh Bắc Kạn;province;;22,147;105,8348;router;127.10.0.1;router;trung tâm\n' >>vn.csv
printf 'bk;;;;;;mcu;127.10.0.1;mcu;\n' >>vn.csv
python3 "$IMPORT" vn.csv -o vn.yml 2>err.txt || { cat err.txt; fail "Vietnamese export rejected"; }
{ grep -qF 'lat: 22.147' vn.yml && grep -qF 'lon: 105.8348' vn.yml; } || { cat vn.yml; fail "decimal commas"; }
grep -qF 'vn.csv:1: warning: unknown column "Ghi chú" ignored' err.txt || { cat err.txt; fail "notes column"; }
grep -qF 'vn.csv:3: warning: site bk: device mcu: address 127.10.0.1 is also bk/router (line 2)' err.txt ||
  { cat err.txt; fail "shared address warning"; }
"$SP_BIN" check vn.yml >/dev/null || fail "check rejects the imported Vietnamese export"
iconv -f UTF-8 -t UTF-16 vn.csv >u16.csv
printf 'Site ID;Name;Level;Parent;Lat;Lon;Device;Address;Role\nbk;T\xd2nh;province;;;;r;127.0.0.1;router\n' >cp.csv
for f in u16 cp; do
  if python3 "$IMPORT" $f.csv -o $f.yml 2>err.txt; then fail "$f.csv accepted"; fi
  { [ "$(wc -l <err.txt)" = 1 ] && grep -q "save it as UTF-8" err.txt; } || { cat err.txt; fail "$f.csv: no one-line fix"; }
done
grep -qF 'cp.csv:2: not UTF-8 (byte 0xD2)' err.txt || { cat err.txt; fail "Windows-1258 line"; }
if python3 "$IMPORT" vn.csv -o /nonexistent/dir/out.yml 2>err.txt; then fail "missing directory accepted"; fi
grep -qx "/nonexistent/dir/out.yml: cannot write: No such file or directory" err.txt || { cat err.txt; fail "missing dir"; }
grep -q Traceback err.txt && fail "a Python traceback"
pass "decimal commas, notes column, shared address, UTF-16, Windows-1258 and a missing directory"
