#!/usr/bin/python3
"""Renders docs/*.md to HTML and writes them as a C++ table (daemon/docs_http.h): the daemon serves
them at /docs/NAME, so the alerts' runbook links open on a network without internet access.

Usage: docs_html.py OUT.cpp CONSOLES_DIR DOC.md...

CONSOLES_DIR gets the on-call pages as Prometheus console files (siteprobe-oncall.html,
siteprobe-oncall.vi.html): the alerts that fire when no siteprobe answers (SiteprobeDown,
SiteprobeTargetMissing, Watchdog) link there, on the Prometheus server (docs/alerts.md).

Headings get GitHub's anchors (what the links in the docs and the rules use); links between the
docs become /docs/NAME links; images become their alt text. Needs python3-markdown (Debian).
"""
import html
import os
import re
import sys

import markdown

PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title} · siteprobe</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#111}}
code,pre{{font:14px ui-monospace,monospace;background:#f2f2f2}}pre{{padding:.6rem;overflow-x:auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2rem .4rem;vertical-align:top}}
nav{{font-size:14px}}:target{{background:#fff3b0}}
</style></head><body>
{nav}{body}
</body></html>
"""


def github_slug(text, sep):
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to '-'."""
    del sep
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


NAV = '<nav><a href="/docs/">siteprobe docs</a> · <a href="/status">status</a></nav>\n'


def render(path, console=False):
    text = open(path, encoding="utf-8").read()
    # Images are not served. Links to another doc stay in the served tree; in a console page only
    # the other on-call page is there, and other links keep their text.
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)

    def link(m):
        doc, anchor = m.group(2), m.group(3) or ""
        if not console:
            return f"[{m.group(1)}](/docs/{doc}{anchor})"
        if doc.startswith("oncall"):
            return f"[{m.group(1)}](siteprobe-{doc}.html{anchor})"
        return f"{m.group(1)} (docs/{doc}.md{anchor})"
    text = re.sub(r"\[([^\]]*)\]\(([a-z0-9_.-]+)\.md(#[^)]*)?\)", link, text)
    body = markdown.markdown(text, extensions=["tables", "fenced_code", "toc"],
                             extension_configs={"toc": {"slugify": github_slug}}, output_format="html")
    first = re.search(r"^# (.+)$", text, re.M)
    name = os.path.basename(path)[:-3]
    page = PAGE.format(lang="vi" if name.endswith(".vi") else "en", nav="" if console else NAV,
                       title=html.escape(first.group(1) if first else name), body=body)
    # A console page is a Go template: a literal {{ must not start an action.
    return page.replace("{{", '{{ "{{" }}') if console else page


def cpp_string(s):
    # Raw string literals in pieces under the compilers' limit on one literal.
    return "\n".join(f'R"SPDOC({s[i:i + 16000]})SPDOC"' for i in range(0, len(s), 16000)) or '""'


def main():
    out, consoles, docs = sys.argv[1], sys.argv[2], sorted(sys.argv[3:])
    os.makedirs(consoles, exist_ok=True)
    for d in docs:
        name = os.path.basename(d)[:-3]
        if name.startswith("oncall"):
            with open(os.path.join(consoles, f"siteprobe-{name}.html"), "w", encoding="utf-8") as f:
                f.write(render(d, console=True))
    rows = [(os.path.basename(d)[:-3], render(d)) for d in docs]
    index = "<h1>siteprobe documentation</h1><ul>" + "".join(
        f'<li><a href="/docs/{n}">{n}</a></li>' for n, _ in rows) + "</ul>"
    rows.insert(0, ("", PAGE.format(lang="en", nav=NAV, title="Documentation", body=index)))
    with open(out, "w", encoding="utf-8") as f:
        f.write("// Generated from docs/*.md by daemon/docs_html.py; do not edit.\n")
        f.write('#include "daemon/docs_http.h"\nnamespace siteprobe {\nconst DocPage kDocPages[] = {\n')
        for n, page in rows:
            f.write(f'{{"{n}",\n{cpp_string(page)}}},\n')
        f.write(f"}};\nconst std::size_t kDocPageCount = {len(rows)};\n}}  // namespace siteprobe\n")


if __name__ == "__main__":
    main()
