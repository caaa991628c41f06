#!/usr/bin/python3
"""Every ```yaml block in docs/*.md is a configuration a user may copy: each must pass
`tailtrace-collector --validate`, with the environment variables the docs name set to dummies.
Exit status 1 passes too: the file is valid and only this host lacks what it names (a CA file
under /etc, say), which an example written for a deployment may well do; 2, a refused file,
fails. Usage: check_doc_yaml.py SOURCE_DIR COLLECTOR_BIN"""
import glob
import os
import re
import subprocess
import sys
import tempfile

src, binary = sys.argv[1], sys.argv[2]
env = dict(os.environ, REDIS_PASSWORD="dummy", HONEYCOMB_API_KEY="dummy")
checked, bad = 0, 0
with tempfile.TemporaryDirectory() as tmp:
    for doc in sorted(glob.glob(os.path.join(src, "docs", "*.md"))):
        for i, m in enumerate(re.finditer(r"```yaml\n(.*?)```", open(doc).read(), re.S)):
            path = os.path.join(tmp, "%s-%d.yaml" % (os.path.basename(doc), i))
            with open(path, "w") as f:
                f.write(m.group(1))
            r = subprocess.run([binary, "--config", path, "--validate"], capture_output=True,
                               text=True, env=env, timeout=30)
            checked += 1
            if r.returncode == 1:
                print("%s, yaml block %d: valid; this host lacks what it names:\n%s" %
                      (doc, i + 1, r.stderr), flush=True)
            elif r.returncode != 0:
                bad += 1
                print("%s, yaml block %d: refused:\n%s" % (doc, i + 1, r.stderr), flush=True)
print("%d passed, %d failed" % (checked - bad, bad))
sys.exit(1 if bad or checked == 0 else 0)
