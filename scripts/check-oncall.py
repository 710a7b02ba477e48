#!/usr/bin/env python3
"""Checks the night-shift pages, docs/oncall.md (English) and docs/oncall.vi.md (Vietnamese),
against the shipped alerting (python3 standard library only):
  - every alert that reaches the pager has a section (a `## ` heading naming it in backticks) in
    both languages: each `severity: critical` rule of alerts/siteprobe.rules.yml, each alertname
    routed to `receiver: pager` in alerts/alertmanager.yml, and Watchdog (the dead-man's switch);
  - both files have the same sections: the same anchors (`<a id="...">`), in the same order, each
    followed by a heading naming the same alerts, with the same commands in backticks counted;
  - each section has its four parts (means, first checks 1-3, call, escalate).
Exit status 0 when all hold, 1 otherwise (each problem printed).
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PARTS = {"en": ["**Means:**", "**First checks:**", "**Call:**", "**Escalate:**"],
         "vi": ["**Ý nghĩa:**", "**Kiểm tra đầu tiên:**", "**Gọi:**", "**Báo cáo lên trên:**"]}


def paging_alerts():
    rules = open(os.path.join(ROOT, "alerts", "siteprobe.rules.yml"), encoding="utf-8").read()
    names = {m.group(1) for m in re.finditer(
        r"- alert: (\S+)\n(?:(?!\s+- alert:).*\n)*?\s+severity: critical\b", rules)}
    am = open(os.path.join(ROOT, "alerts", "alertmanager.yml"), encoding="utf-8").read()
    for m in re.finditer(r"^\s*- matchers: \[(.*)\]\n\s+receiver: pager\b", am, re.M):
        names |= set(re.findall(r"alertname=\"(\w+)\"", m.group(1)))
    return names | {"Watchdog"}


def sections(lang, problems):
    path = os.path.join(ROOT, "docs", "oncall.md" if lang == "en" else "oncall.vi.md")
    text = open(path, encoding="utf-8").read()
    out = []
    for m in re.finditer(r'^<a id="([a-z0-9-]+)"></a>\n## (.*)\n((?:(?!<a id=).*\n)*)', text, re.M):
        anchor, heading, body = m.groups()
        for part in PARTS[lang]:
            if part not in body:
                problems.append(f"{os.path.relpath(path, ROOT)}#{anchor}: no {part}")
        if not all(re.search(rf"^{n}\. ", body, re.M) for n in (1, 2, 3)):
            problems.append(f"{os.path.relpath(path, ROOT)}#{anchor}: want first checks 1, 2 and 3")
        out.append((anchor, frozenset(re.findall(r"`([A-Z]\w+)`", heading)),
                    len(re.findall(r"`[^`]+`", body))))
    return out


def main():
    problems = []
    en, vi = sections("en", problems), sections("vi", problems)
    if [s[:2] for s in en] != [s[:2] for s in vi]:
        problems.append(f"oncall.md and oncall.vi.md differ in sections: {[s[:2] for s in en]} "
                        f"vs {[s[:2] for s in vi]}")
    for (anchor, _, n_en), (_, _, n_vi) in zip(en, vi):
        if n_en != n_vi:
            problems.append(f"#{anchor}: {n_en} commands or names in backticks in English, {n_vi} in Vietnamese")
    covered = set().union(*(s[1] for s in en)) if en else set()
    covered |= {"Watchdog"} if any(a == "watchdog" for a, _, _ in en) else set()
    for name in sorted(paging_alerts() - covered):
        problems.append(f"paging alert {name} has no section in docs/oncall.md")
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print(f"ok: {len(en)} on-call pages in English and Vietnamese cover the {len(paging_alerts())} paging alerts")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
