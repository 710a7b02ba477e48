#!/usr/bin/env python3
"""Generates the Vietnamese dashboards, grafana/dashboards/vi/*.json, from the English ones
(grafana/dashboards/*.json, the one source) and the table grafana/i18n/vi.json (English text ->
Vietnamese text). Queries, thresholds and layout are copied unchanged, so the two languages cannot
drift apart; only the text a person reads is replaced: titles, descriptions, variable labels,
value-mapping texts. Each Vietnamese dashboard has the uid of its English one
plus "-vi", the tag "siteprobe-vi" instead of "siteprobe" (its link menu lists the Vietnamese
dashboards), and links to the Vietnamese dashboards. Table columns keep their field names (label
names and renamed values): sorting and overrides refer to them.

Usage:
  translate.py          rewrite grafana/dashboards/vi/
  translate.py --check  fail (exit 1) on a text without a translation, a translation nothing
                        uses, or a vi/ file that differs from what the English one gives
                        (grafana/check-dashboards.py runs this check too)
"""
import argparse
import glob
import json
import os
import re
import sys

KEYS = {"title", "description", "text", "label"}  # not displayName: only sortBy has it, naming a column
HERE = os.path.dirname(os.path.abspath(__file__))


def canonical(obj):
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _translate(node, table, used, missing, where):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in KEYS and isinstance(v, str) and any(c.isalpha() for c in v):
                if v in table:
                    used.add(v)
                    v = table[v]
                else:
                    missing.setdefault(v, where)
            elif k == "tags" and isinstance(v, list):
                v = ["siteprobe-vi" if t == "siteprobe" else t for t in v]
            elif k == "uid" and isinstance(v, str) and v.startswith("siteprobe-") and "datasource" not in where:
                v = v + "-vi"
            elif k == "url" and isinstance(v, str):
                v = re.sub(r"/d/(siteprobe-[a-z-]+)/(siteprobe-[a-z-]+)", r"/d/\1-vi/\2-vi", v)
            elif k != "current":  # a variable's saved value: an id, never shown as text
                v = _translate(v, table, used, missing, f"{where}.{k}")
            out[k] = v
        return out
    if isinstance(node, list):
        return [_translate(v, table, used, missing, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


def generate(gdir=HERE):
    """{path: text} of the Vietnamese dashboards, and the problems (missing or unused texts)."""
    table = json.load(open(os.path.join(gdir, "i18n", "vi.json"), encoding="utf-8"))
    used, missing, files = set(), {}, {}
    for path in sorted(glob.glob(os.path.join(gdir, "dashboards", "*.json"))):
        name = os.path.basename(path)
        dash = json.load(open(path, encoding="utf-8"))
        files[os.path.join(gdir, "dashboards", "vi", name)] = canonical(
            _translate(dash, table, used, missing, name))
    problems = [f"i18n/vi.json: no translation for {text!r} ({where})" for text, where in missing.items()]
    problems += [f"i18n/vi.json: {text!r} is used by no dashboard" for text in sorted(set(table) - used)]
    return files, problems


def check(gdir=HERE):
    files, problems = generate(gdir)
    for path, text in files.items():
        rel = os.path.relpath(path, gdir)
        if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
            problems.append(f"{rel}: differs from its English dashboard and i18n/vi.json "
                            f"(run grafana/translate.py)")
    for path in glob.glob(os.path.join(gdir, "dashboards", "vi", "*.json")):
        if path not in files:
            problems.append(f"{os.path.relpath(path, gdir)}: no English dashboard of that name")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        problems = check()
        for p in problems:
            print(f"  FAIL {p}")
        return 1 if problems else 0
    files, problems = generate()
    for p in problems:
        print(f"  FAIL {p}")
    if problems:
        return 1
    os.makedirs(os.path.join(HERE, "dashboards", "vi"), exist_ok=True)
    for path, text in files.items():
        open(path, "w", encoding="utf-8").write(text)
    print(f"wrote {len(files)} Vietnamese dashboards to {os.path.relpath(os.path.dirname(next(iter(files))), os.getcwd())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
