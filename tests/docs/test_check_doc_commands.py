#!/usr/bin/python3
"""check_doc_commands.py passes a document whose blocks all run or name a real check
(fixtures/good.md) and fails one with an unmarked block, checks that name nothing real, a block
that fails and a make line CI does not run (fixtures/bad.md), naming each.
Usage: test_check_doc_commands.py SOURCE_DIR BUILD_DIR COLLECTOR_BIN"""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
checker = os.path.join(here, "check_doc_commands.py")


def run(fixture):
    return subprocess.run(["/usr/bin/python3", checker] + sys.argv[1:4] +
                          [os.path.join(here, "fixtures", fixture)],
                          capture_output=True, text=True, timeout=120)


good = run("good.md")
print(good.stdout, good.stderr)
if good.returncode != 0 or "2 blocks run, 1 named" not in good.stdout:
    print("FAIL: fixtures/good.md was refused")
    sys.exit(1)
bad = run("bad.md")
print(bad.stdout, bad.stderr)
want = ["bad.md:3: a shell block with neither",
        "bad.md:8: no registered ctest matches ^no_such_test_anywhere$",
        "bad.md:13: `checked by: tests/no/such/file.py`: no such file",
        "bad.md:18: exit 1",
        "bad.md:23: `make test SANITIZE=memory` is not what .ci/run runs",
        "0 blocks run, 0 named what checks them, 5 failed"]
missing = [w for w in want if w not in bad.stdout]
if bad.returncode != 1 or missing:
    print("FAIL: fixtures/bad.md: exit %d, missing %r" % (bad.returncode, missing))
    sys.exit(1)
print("PASS")
