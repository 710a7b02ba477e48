#!/usr/bin/env python3
"""Turns an ops spreadsheet export (CSV) into a siteprobe inventory.

usage: scripts/import-csv.py [--levels province,district,commune] [-o OUT.yml] SITES.csv

The CSV has a header row and one row per device. Columns (any order, names case-insensitive,
spaces or underscores): site id, name, level, parent, lat, lon, device, address, role.

- A site's name, level, parent, lat and lon are taken from its first row. Later rows of the same
  site may leave them empty or repeat them; a different value is an error.
- A row with empty device, address and role declares a site without devices.
- Comma, semicolon or tab separated; UTF-8, with or without a byte-order mark (Excel). A file in
  Windows-1258, TCVN3 or UTF-16 is refused with how to save it as UTF-8.
- Coordinates may use a decimal comma (22,15), as Vietnamese Excel writes them.
- Unknown columns (a "Ghi chú" notes column, say) are ignored with a warning; a device address used
  twice is a warning too (two names can share a box). Warnings go to stderr as FILE:LINE: warning:.

Every problem is reported as FILE:LINE: message, all of them, then the exit status is 1 and no
inventory is written. Stdlib only; run `siteprobe check` on the result before deploying it.
"""
import argparse
import csv
import ipaddress
import json
import math
import re
import sys

COLUMNS = ["site id", "name", "level", "parent", "lat", "lon", "device", "address", "role"]
ROLES = ["firewall", "mcu", "other", "router", "server", "switch", "vc_endpoint"]
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LABEL_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
HOST_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def valid_address(a):
    try:
        ipaddress.ip_address(a)
        return True
    except ValueError:
        pass
    labels = a[:-1].split(".") if a.endswith(".") else a.split(".")
    if len(a) > 253 or not all(HOST_LABEL_RE.match(x) for x in labels):
        return False
    return not labels[-1].isdigit()  # 127.0.0.300 is a bad address, not a host name


def coordinate(s, lo, hi):
    if s.count(",") == 1 and "." not in s:  # a decimal comma: 22,15
        s = s.replace(",", ".")
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) and lo <= v <= hi else None


def num(v):
    """Plain decimal, as siteprobe wants it: 0.00001, not 1e-05."""
    return ("%.7f" % v).rstrip("0").rstrip(".")


def q(s):
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s, ensure_ascii=False)


def convert(path, text, levels, warnings):
    errors = []

    def err(line, msg):
        errors.append(f"{path}:{line}: {msg}")

    def warn(line, msg):
        warnings.append(f"{path}:{line}: warning: {msg}")

    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)  # the header names the columns, so it has the most
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return None, [f"{path}:1: empty file (want a header row: {', '.join(COLUMNS)})"]
    names = [re.sub(r"[\s_]+", " ", h.strip().lower()) for h in header]
    col = {}
    for i, n in enumerate(names):
        if n not in COLUMNS:
            warn(1, f"unknown column {q(header[i])} ignored (allowed: {', '.join(COLUMNS)})")
        elif n in col:
            err(1, f"column {q(header[i])} given twice")
        else:
            col[n] = i
    missing = [c for c in ("site id", "name", "level", "device", "address", "role") if c not in col]
    if missing:
        err(1, f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    if errors:
        return None, errors

    sites = {}  # id -> dict(line, name, level, parent, lat, lon, devices[(line, name, addr, role)])
    addresses = {}  # address -> (line, "site/device") of its first use
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header):
            err(line, f"{len(row)} fields, the header has {len(header)}")
            continue
        get = lambda c: row[col[c]].strip() if c in col and col[c] < len(row) else ""
        sid = get("site id")
        if not sid:
            err(line, "site id is empty")
            continue
        if not ID_RE.match(sid):
            err(line, f"site id {q(sid)}: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
        fields = {k: get(k) for k in ("name", "level", "parent", "lat", "lon")}
        site = sites.get(sid)
        if site is None:
            site = sites[sid] = dict(line=line, devices=[], **fields)
            if not fields["name"]:
                err(line, f"site {sid}: name is empty")
            if fields["level"] not in levels:
                err(line, f"site {sid}: unknown level {q(fields['level'])} (allowed: {', '.join(levels)})")
            if fields["parent"] == sid:
                err(line, f"site {sid}: is its own parent")
            if bool(fields["lat"]) != bool(fields["lon"]):
                err(line, f"site {sid}: give both lat and lon, or neither")
            elif fields["lat"]:
                if coordinate(fields["lat"], -90, 90) is None:
                    err(line, f"site {sid}: lat {q(fields['lat'])} is not a number in -90..90")
                if coordinate(fields["lon"], -180, 180) is None:
                    err(line, f"site {sid}: lon {q(fields['lon'])} is not a number in -180..180")
        else:
            for k, v in fields.items():
                if v and v != site[k]:
                    err(line, f"site {sid}: {k} {q(v)} differs from {q(site[k])} on line {site['line']}")
        device, address, role = get("device"), get("address"), get("role")
        if not (device or address or role):
            continue
        if not ID_RE.match(device):
            err(line, f"site {sid}: device name {q(device)}: use 1-64 letters, digits, '-', '_' or '.'")
        elif any(d[1] == device for d in site["devices"]):
            first = next(d[0] for d in site["devices"] if d[1] == device)
            err(line, f"site {sid}: duplicate device {q(device)} (first on line {first})")
        if not valid_address(address):
            err(line, f"site {sid}: device {device}: invalid address {q(address)} (IPv4, IPv6 or DNS name)")
        elif address in addresses:
            first_line, first = addresses[address]
            warn(line, f"site {sid}: device {device}: address {address} is also {first} (line {first_line});"
                       " fine if both are the same box")
        else:
            addresses[address] = (line, f"{sid}/{device}")
        if role not in ROLES:
            err(line, f"site {sid}: device {device}: unknown role {q(role)} (allowed: {', '.join(ROLES)})")
        site["devices"].append((line, device, address, role))

    if not sites and not errors:
        err(start - 1, "no sites")
    # The tree: parents exist, levels descend, no cycles.
    for sid, s in sites.items():
        p = s["parent"]
        if not p or p == sid:
            continue
        if p not in sites:
            err(s["line"], f"site {sid}: unknown parent {q(p)} (no row has this site id)")
        elif s["level"] in levels and sites[p]["level"] in levels:
            if levels.index(s["level"]) <= levels.index(sites[p]["level"]):
                err(s["line"], f"site {sid}: level {s['level']} is not below its parent's ({sites[p]['level']})")
    for sid in sites:
        seen, cur = set(), sid
        while cur in sites and sites[cur]["parent"] and cur not in seen:
            seen.add(cur)
            cur = sites[cur]["parent"]
        if cur == sid and sid in seen and sites[sid]["parent"] != sid:
            err(sites[sid]["line"], f"site {sid}: parent cycle")
    if errors:
        errors.sort(key=lambda e: int(e[len(path) + 1:].split(":", 1)[0]))
        return None, errors

    out = [f"# Generated by scripts/import-csv.py from {path}; check with `siteprobe check`.",
           f"levels: [{', '.join(levels)}]", "", "sites:"]
    for sid, s in sites.items():
        out += [f"  - id: {q(sid)}", f"    name: {q(s['name'])}", f"    level: {s['level']}"]
        if s["parent"]:
            out.append(f"    parent: {q(s['parent'])}")
        if s["lat"]:
            out += [f"    lat: {num(coordinate(s['lat'], -90, 90))}", f"    lon: {num(coordinate(s['lon'], -180, 180))}"]
        out.append("    devices:" + ("" if s["devices"] else " []"))
        for _, name, address, role in s["devices"]:
            out.append(f"      - {{name: {q(name)}, address: {q(address)}, role: {role}}}")
    return "\n".join(out) + "\n", []


SAVE_AS = 'in Excel: File > Save As > "CSV UTF-8 (Comma delimited)"'


def decode(raw):
    """The text of a UTF-8 file (BOM or not), or None and "LINE: why" with how to fix it."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None, f"1: the file is UTF-16 (Excel's \"Unicode Text\"); save it as UTF-8: {SAVE_AS}, " \
                     "or iconv -f UTF-16 -t UTF-8"
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        return None, (f"{line}: not UTF-8 (byte 0x{raw[e.start]:02X}): the file looks like Windows-1258 or "
                      f"TCVN3; save it as UTF-8: {SAVE_AS}, or iconv -f WINDOWS-1258 -t UTF-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", help="the spreadsheet export")
    ap.add_argument("-o", "--output", help="write the inventory here (default: stdout)")
    ap.add_argument("--levels", default="province,district,commune",
                    help="tiers of the site tree, top first (default: province,district,commune)")
    a = ap.parse_args()
    levels = [x.strip() for x in a.levels.split(",")]
    bad = [x for x in levels if not LABEL_RE.match(x)]
    if bad or not 1 <= len(levels) <= 6 or len(set(levels)) != len(levels):
        ap.error("--levels: 1 to 6 distinct names matching [a-z_][a-z0-9_]*")
    try:
        with open(a.csv, "rb") as f:
            raw = f.read()
    except OSError as e:
        print(f"{a.csv}: cannot read: {e.strerror}", file=sys.stderr)
        return 1
    text, problem = decode(raw)
    if problem:
        print(f"{a.csv}:{problem}", file=sys.stderr)
        return 1
    warnings = []
    inventory, errors = convert(a.csv, text, levels, warnings)
    for e in warnings + errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"{a.csv}: FAILED: {len(errors)} error{'s' if len(errors) > 1 else ''}", file=sys.stderr)
        return 1
    if a.output:
        try:
            with open(a.output, "w", encoding="utf-8") as f:
                f.write(inventory)
        except OSError as e:
            print(f"{a.output}: cannot write: {e.strerror}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(inventory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
