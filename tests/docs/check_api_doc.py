#!/usr/bin/python3
"""docs/api.md names every function include/tailtrace.h declares (exported or inline), so the
reference cannot fall behind the header. Usage: check_api_doc.py SOURCE_DIR"""
import os
import re
import sys

src = sys.argv[1]
header = open(os.path.join(src, "include", "tailtrace.h")).read()
header = re.sub(r"/\*.*?\*/", "", header, flags=re.S)  # comments mention functions too
# A declaration: TT_EXTERN or static inline, a return type, then the name and "(".
names = set(re.findall(r"(?:TT_EXTERN|static\s+inline)\s+[\w\s\*]*?\b(tt_\w+)\s*\(", header))
names |= set(re.findall(r"#define\s+(tt_\w+)\b", header))
names |= set(re.findall(r"#define\s+(TT_SPAN(?:_EX)?)\(", header))
# Names ending in "_" (tt_attr_str_ behind TT_STR in C++) are the header's own helpers, not API.
names = {n for n in names if not n.endswith("_")}
doc = open(os.path.join(src, "docs", "api.md")).read()
# In backticks, alone or as the start of a signature.
missing = sorted(n for n in names if not re.search(r"[`\s(*]%s\b" % re.escape(n), doc))
print("%d functions and macros in tailtrace.h, %d missing from docs/api.md" %
      (len(names), len(missing)))
for n in missing:
    print("  missing: " + n)
sys.exit(1 if missing or len(names) < 50 else 0)
