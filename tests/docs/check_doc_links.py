#!/usr/bin/python3
"""Every relative link in README.md and docs/*.md points at a file of the tree, and every
#anchor at a heading of its target (GitHub's slugs); every path of the tree written in
backticks exists. So a moved section or file is found.
Usage: check_doc_links.py SOURCE_DIR"""
import glob
import os
import re
import sys

src = sys.argv[1]


def slugs(path):
    out = set()
    text = re.sub(r"```.*?```", "", open(path).read(), flags=re.S)
    for h in re.findall(r"^#{1,6}\s+(.*?)\s*$", text, re.M):
        s = re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
        out.add(s)
    return out


bad, checked = [], 0
for doc in [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md"))):
    text = re.sub(r"```.*?```", "", open(doc).read(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        checked += 1
        if not os.path.exists(full):
            bad.append("%s: (%s): no such file" % (os.path.relpath(doc, src), target))
        elif anchor and full.endswith(".md") and anchor not in slugs(full):
            bad.append("%s: (%s): no such heading" % (os.path.relpath(doc, src), target))
    # Paths of the tree written in backticks (`deploy/jaeger.yaml`, `tests/docs/x.py`).
    for path in re.findall(r"`((?:docs|deploy|tests|bench|collector|agent|include|proto|examples)"
                           r"/[\w./-]+)`", text):
        # Patterns, folders and what the build or npm makes are not files of the tree.
        if any(c in path for c in "*<>") or path.endswith("/") or "node_modules" in path:
            continue
        checked += 1
        if not os.path.exists(os.path.join(src, path)):
            bad.append("%s: `%s`: no such file" % (os.path.relpath(doc, src), path))
for b in bad:
    print("FAIL " + b)
print("%d links checked, %d broken" % (checked, len(bad)))
sys.exit(1 if bad or checked == 0 else 0)
