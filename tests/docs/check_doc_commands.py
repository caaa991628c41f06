#!/usr/bin/python3
"""Every shell block of README.md and docs/*.md is either run here or names what checks it.

A fenced block whose language is sh, bash, shell or console must follow (blank lines apart) one
of these HTML comments, invisible when the Markdown is rendered:

  <!-- run -->                      run the block with bash -euo pipefail; it must exit 0
  <!-- run: timeout=300 -->         the same with another bound in seconds (default 120)
  <!-- run: background ready=URL -->
                                    start the block, wait until GET URL answers 200; it keeps
                                    running while the document's later blocks run, then gets
                                    SIGTERM (a server such as `make run`)
  <!-- run: servers ready=URL -->   each command line in turn is a server: start it, wait for
                                    URL, SIGTERM it; it must exit 0
  <!-- not run: WHY; checked by: WHAT -->
                                    WHAT is checked to be real: `ctest REGEX` (a registered test
                                    matches), `.ci/run` (it runs each line's make target with
                                    the same variables), or a path in the tree (it exists)

A block of another language preceded by <!-- file: NAME --> is written to NAME first, so a
document can show a program and then build it.

The blocks of one document run in order in one scratch directory: every top-level entry of the
source tree is linked there, `build` is the build tree ctest was configured with, and `bin/` (on
PATH) holds `tailtrace-collector`, a `cmake` that maps `-S .` and `-B build` to the real
source and build trees (refusing a -D that would change the build's cache) and, for a sanitizer
build, `cc` and `c++` adding its -fsanitize flags. TT_SPOOL_DIR points
into the scratch directory, so no command writes outside it and the build tree.

Usage: check_doc_commands.py SOURCE_DIR BUILD_DIR COLLECTOR_BIN [FILE.md ...]
(default: README.md and docs/*.md). Exit 0 when every block ran or named a real check."""
import glob
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SHELL_LANGS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*(run|not run|file)\b:?\s*(.*?)\s*-->\s*$")

CMAKE_SHIM = r'''#!/usr/bin/python3
# cmake as the documents write it (-S . -B build), on the real trees ctest uses.
import os, re, subprocess, sys
src, build, real = os.environ["TT_DOC_SRC"], os.environ["TT_DOC_BUILD"], os.environ["TT_DOC_CMAKE"]
args, out, i = sys.argv[1:], [], 0
cache = open(os.path.join(build, "CMakeCache.txt")).read()
while i < len(args):
    a = args[i]
    if a == "-S" and args[i + 1] == ".":
        out += ["-S", src]; i += 2; continue
    if a in ("-B", "--build") and os.path.realpath(args[i + 1]) == os.path.realpath(build):
        out += [a, build]; i += 2; continue
    m = re.match(r"-D(\w+)(?::\w+)?=(.*)", a)
    if m:
        have = re.search(r"^%s:\w+=(.*)$" % m.group(1), cache, re.M)
        if not have or have.group(1) != m.group(2):
            sys.exit("doc cmake shim: %s would change the build's cache (%s); mark the block "
                     "not run" % (a, have.group(1) if have else "unset"))
    out.append(a); i += 1
os.execv(real, [real] + out)
'''


class Block:
    def __init__(self, doc, line, lang, text, directive, arg):
        self.doc, self.line, self.lang, self.text = doc, line, lang, text
        self.directive, self.arg = directive, arg

    def where(self):
        return "%s:%d" % (self.doc, self.line)


def blocks_of(path, rel):
    """Fenced blocks with the directive on the nearest non-blank line before each."""
    lines = open(path).read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(2):
            if m:  # a fence without a language: skip to its end
                i += 1
                while i < len(lines) and not FENCE.match(lines[i]):
                    i += 1
            i += 1
            continue
        indent, lang, start = m.group(1), m.group(2), i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        d = DIRECTIVE.match(lines[j]) if j >= 0 else None
        out.append(Block(rel, start + 1, lang, "\n".join(body) + "\n",
                         d.group(1) if d else None, d.group(2) if d else ""))
        i += 1
    return out


def options(arg):
    opts = {}
    for tok in arg.split():
        k, _, v = tok.partition("=")
        opts[k] = v if v else True
    return opts


def commands(text):
    """The command lines of a block: comments and blank lines dropped, continuations joined."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.split(" #")[0].rstrip() if not line.lstrip().startswith("#") else ""
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        if cur.strip():
            out.append(cur.strip())
        cur = ""
    return out


class Checker:
    def __init__(self, src, build, binary):
        self.src, self.build, self.binary = src, build, binary
        self.failures, self.ran, self.named = [], 0, 0
        self.ctest_names = None

    def fail(self, block, msg):
        self.failures.append("%s: %s" % (block.where(), msg))
        print("FAIL %s: %s" % (block.where(), msg), flush=True)

    # --- not run: the check it names must be real ------------------------------------------
    def tests(self):
        if self.ctest_names is None:
            r = subprocess.run(["ctest", "--test-dir", self.build, "-N"], capture_output=True,
                               text=True, timeout=60)
            self.ctest_names = re.findall(r"Test\s+#\d+: (\S+)", r.stdout)
        return self.ctest_names

    def make_deps(self):
        """target -> its prerequisites, followed through, from the Makefile."""
        rules = {}
        for m in re.finditer(r"^([\w-]+):([^=\n]*)$", open(os.path.join(self.src, "Makefile")).read(),
                             re.M):
            rules[m.group(1)] = m.group(2).split()
        def closure(t, seen):
            for d in rules.get(t, []):
                if d not in seen:
                    seen.append(d)
                    closure(d, seen)
            return seen
        return {t: closure(t, []) for t in rules}

    def check_named(self, b):
        why, _, what = b.arg.partition("; checked by:")
        what = what.strip()
        if not why.strip() or not what:
            return self.fail(b, "a not-run block must say why and `; checked by: WHAT`")
        if what.startswith("ctest "):
            rx = re.compile(what[len("ctest "):].strip())
            hits = [n for n in self.tests() if rx.search(n)]
            if not hits:
                return self.fail(b, "no registered ctest matches %s" % rx.pattern)
            how = "%d ctest(s), e.g. %s" % (len(hits), hits[0])
        elif what == ".ci/run":
            ci = open(os.path.join(self.src, ".ci", "run")).read()
            for cmd in commands(b.text):
                words = shlex.split(cmd)
                if words[:1] != ["make"]:
                    return self.fail(b, "`%s`: only make targets can be checked by .ci/run" % cmd)
                calls = [shlex.split(l.split("make", 1)[1]) for l in ci.splitlines()
                         if re.match(r"\s*make\b", l)]
                # A target .ci/run makes as a prerequisite of the one it names counts too.
                deps = self.make_deps()
                for c in calls:
                    c += [d for t in c for d in deps.get(t, [])]
                if not any(all(w in c for w in words[1:]) for c in calls):
                    return self.fail(b, "`%s` is not what .ci/run runs" % cmd)
            how = ".ci/run runs each line"
        else:
            if not os.path.exists(os.path.join(self.src, what)):
                return self.fail(b, "`checked by: %s`: no such file in the tree" % what)
            how = what
        self.named += 1
        print("named  %s: %s (%s)" % (b.where(), why.strip(), how), flush=True)

    # --- run ------------------------------------------------------------------------------
    def scratch(self, work):
        for name in os.listdir(self.src):
            # Not the collector's default output: a run in the source tree (make run) leaves it,
            # and the documents' own runs must start without one.
            if name.startswith("tailtrace-traces.jsonl"):
                continue
            if name not in (".git", "build") and not name.startswith("build"):
                os.symlink(os.path.join(self.src, name), os.path.join(work, name))
        os.symlink(self.build, os.path.join(work, "build"))
        bindir = os.path.join(work, "bin")
        os.mkdir(bindir)
        os.symlink(self.binary, os.path.join(bindir, "tailtrace-collector"))
        shim = os.path.join(bindir, "cmake")
        with open(shim, "w") as f:
            f.write(CMAKE_SHIM)
        os.chmod(shim, 0o755)
        real_cmake = subprocess.run(["sh", "-c", "command -v cmake"], capture_output=True,
                                    text=True).stdout.strip()
        # A sanitizer build's libtailtrace needs its runtime in the program that links it: `cc`
        # and `c++` then add the build's -fsanitize flags, as the build itself does.
        cache = open(os.path.join(self.build, "CMakeCache.txt")).read()
        san = re.search(r"^TT_SANITIZE:\w+=(\w*)$", cache, re.M)
        flags = {"address": "-fsanitize=address,undefined", "thread": "-fsanitize=thread"}.get(
            san.group(1) if san else "", "")
        if flags:
            for cc in ("cc", "c++"):
                real = subprocess.run(["sh", "-c", "command -v " + cc], capture_output=True,
                                      text=True).stdout.strip()
                w = os.path.join(bindir, cc)
                with open(w, "w") as f:
                    f.write('#!/bin/sh\nexec %s %s "$@"\n' % (real, flags))
                os.chmod(w, 0o755)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
                   TT_DOC_SRC=self.src, TT_DOC_BUILD=self.build, TT_DOC_CMAKE=real_cmake,
                   TT_SPOOL_DIR=os.path.join(work, "spool"), BUILD="build")
        env.pop("HONEYCOMB_API_KEY", None)
        return env

    @staticmethod
    def ready(url):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, script, work, env):
        return subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    def wait_ready(self, b, p, url, timeout):
        end = time.time() + timeout
        while time.time() < end and p.poll() is None and not self.ready(url):
            time.sleep(0.2)
        if p.poll() is not None or not self.ready(url):
            self.stop(p)
            self.fail(b, "%s was not answered 200 within %d s (exit %r):\n%s" %
                      (url, timeout, p.returncode, p.stdout.read()[-3000:]))
            return False
        return True

    @staticmethod
    def stop(p):
        """SIGTERM to the block's own process group; returns its exit status and output."""
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            return None, out
        return p.returncode, out

    def run_doc(self, blocks):
        with tempfile.TemporaryDirectory(prefix="tt-doc-") as work:
            env = self.scratch(work)
            background = []
            try:
                for b in blocks:
                    if b.directive == "file":
                        with open(os.path.join(work, b.arg), "w") as f:
                            f.write(b.text)
                        continue
                    if b.lang not in SHELL_LANGS:
                        continue
                    if b.directive is None:
                        self.fail(b, "a shell block with neither <!-- run --> nor "
                                     "<!-- not run: WHY; checked by: WHAT -->")
                    elif b.directive == "not run":
                        self.check_named(b)
                    else:
                        self.run_block(b, work, env, background)
            finally:
                for b, p in background:
                    rc, out = self.stop(p)
                    if rc is None:
                        self.fail(b, "did not stop within 30 s of SIGTERM:\n" + out[-3000:])
                    else:
                        print("stopped %s (exit %d after SIGTERM)" % (b.where(), rc), flush=True)

    def run_block(self, b, work, env, background):
        o = options(b.arg)
        timeout = int(o.get("timeout", 120))
        t0 = time.time()
        if o.get("background"):
            p = self.start(b.text, work, env)
            if self.wait_ready(b, p, o["ready"], timeout):
                background.append((b, p))
                self.ran += 1
                print("ran    %s: ready (%s) in %.1f s, left running" %
                      (b.where(), o["ready"], time.time() - t0), flush=True)
            return
        if o.get("servers"):
            for cmd in commands(b.text):
                p = self.start(cmd, work, env)
                if not self.wait_ready(b, p, o["ready"], timeout):
                    return
                rc, out = self.stop(p)
                # Through make, the group's SIGTERM ends make too (status 2 or the signal);
                # what counts is the collector's own clean stop, its last log line.
                if rc != 0 and not (cmd.startswith("make ") and '"msg":"stopped"' in out):
                    return self.fail(b, "`%s` exited %r after SIGTERM:\n%s" % (cmd, rc, out[-3000:]))
                print("ran    %s: `%s` ready, stopped with exit 0" % (b.where(), cmd), flush=True)
            self.ran += 1
            return
        p = self.start(b.text, work, env)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _, out = self.stop(p)
            return self.fail(b, "did not finish within %d s:\n%s" % (timeout, out[-3000:]))
        if p.returncode != 0:
            return self.fail(b, "exit %d:\n%s" % (p.returncode, out[-3000:]))
        self.ran += 1
        print("ran    %s: exit 0 in %.1f s" % (b.where(), time.time() - t0), flush=True)
        if os.environ.get("TT_DOC_VERBOSE"):
            print(out, flush=True)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    src, build, binary = (os.path.realpath(a) for a in sys.argv[1:4])
    docs = sys.argv[4:] or [os.path.join(src, "README.md")] + sorted(
        glob.glob(os.path.join(src, "docs", "*.md")))
    c = Checker(src, build, binary)
    for doc in docs:
        rel = os.path.relpath(doc, src) if doc.startswith(src) else doc
        c.run_doc(blocks_of(doc, rel))
    print("%d blocks run, %d named what checks them, %d failed" %
          (c.ran, c.named, len(c.failures)), flush=True)
    sys.exit(1 if c.failures or c.ran + c.named == 0 else 0)


main()
