#!/usr/bin/python3
"""The shipped Jaeger and Honeycomb configurations start on a fresh host: the collector binary
creates the spool directory they name, with its parents, 0700 and owned by the running user;
where it cannot (a parent is a file, or the user may not write there), `--validate` and the start
both refuse, naming the file, the line and the key.

Runs the real tailtrace-collector on loopback ephemeral ports, with deploy/jaeger.yaml and
deploy/honeycomb.yaml as shipped, every port (the admin one too) set through the variables they
read. Usage (through ctest): test_spool_dir.py"""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.environ.get("TT_SOURCE_DIR", "")
BINARY = os.environ.get("TT_COLLECTOR_BIN", "")
NOBODY = 65534


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def shipped(name, work):
    """deploy/NAME.yaml as shipped, copied to work/ (so nobody can read it), the admin port
    to use, and the line of its spool.dir."""
    text = open(os.path.join(SRC, "deploy", name + ".yaml")).read()
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    line = next(i + 1 for i, l in enumerate(text.splitlines()) if re.match(r"\s+dir:", l))
    return path, free_port(), line


def env_for(spool_root, admin=0):
    return dict(os.environ, TT_SPOOL_DIR=spool_root, HONEYCOMB_API_KEY="test-key",
                TT_ADMIN_BIND="127.0.0.1:%d" % (admin or free_port()),
                TT_GRPC_BIND="127.0.0.1:%d" % free_port(),
                TT_HTTP_BIND="127.0.0.1:%d" % free_port(),
                # Nothing listens there: the exporter retries and spools, which is all we need.
                JAEGER_OTLP_GRPC="127.0.0.1:%d" % free_port(),
                HONEYCOMB_GRPC="127.0.0.1:%d" % free_port())


def validate(cfg, env, preexec=None):
    return subprocess.run([BINARY, "--config", cfg, "--validate"], capture_output=True,
                          text=True, env=env, timeout=30, preexec_fn=preexec)


def ready(admin):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_and_stop(cfg, admin, env, what):
    """Starts the collector, waits (bounded) for /readyz, then SIGTERMs it; fails on a refusal."""
    p = subprocess.Popen([BINARY, "--config", cfg], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        end = time.time() + 30
        while time.time() < end and p.poll() is None and not ready(admin):
            time.sleep(0.1)
        if p.poll() is not None:
            fail("%s: the collector exited %d at start:\n%s" % (what, p.returncode,
                                                                 p.stdout.read()))
        if not ready(admin):
            fail("%s: /readyz did not answer 200 within 30 s" % what)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
        if p.returncode != 0:
            fail("%s: exit %d after SIGTERM:\n%s" % (what, p.returncode, out))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def expect_refusal(cfg, line, env, what, reason, preexec=None):
    """--validate exits 1 and the start exits non-zero, both naming cfg:line and the key."""
    want = re.compile(r"%s:%d: exporters\[0\]\.spool\.dir: cannot create .*%s" %
                      (re.escape(cfg), line, re.escape(reason)))
    r = validate(cfg, env, preexec)
    if r.returncode != 1 or not want.search(r.stderr):
        fail("%s: --validate exit %d, wanted 1 and /%s/:\n%s%s" %
             (what, r.returncode, want.pattern, r.stdout, r.stderr))
    p = subprocess.run([BINARY, "--config", cfg], capture_output=True, text=True, env=env,
                       timeout=30, preexec_fn=preexec)
    # The daemon's refusal is JSON lines: the path is JSON-escaped there, so look for the pieces.
    start_out = p.stdout + p.stderr
    if p.returncode == 0 or "exporters[0].spool.dir: cannot create" not in start_out \
            or ("%s:%d:" % (cfg, line)) not in start_out.replace("\\/", "/") \
            or reason not in start_out:
        fail("%s: the start exited %d and said:\n%s" % (what, p.returncode, start_out))
    print("ok: %s refused by --validate and at start: %s" %
          (what, want.search(r.stderr).group(0)), flush=True)


def check_created(config, work):
    cfg, admin, line = shipped(config, work)
    fresh = os.path.join(work, "fresh-" + config)
    root = os.path.join(fresh, "var", "lib", "tailtrace", "spool")
    env = env_for(root, admin)
    r = validate(cfg, env)
    if r.returncode != 0:
        fail("%s: --validate of a missing, creatable spool exit %d:\n%s%s" %
             (config, r.returncode, r.stdout, r.stderr))
    if os.path.exists(fresh):
        fail("%s: --validate created the spool directory (it must change nothing)" % config)
    start_and_stop(cfg, admin, env, config)
    leaf = os.path.join(root, config)
    path = leaf
    # Every directory the collector made, from the leaf up to work/fresh, is 0700 and ours.
    while path != work:
        st = os.stat(path)
        if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o700 \
                or st.st_uid != os.getuid():
            fail("%s: %s is mode %o uid %d, wanted a directory 0700 uid %d" %
                 (config, path, stat.S_IMODE(st.st_mode), st.st_uid, os.getuid()))
        path = os.path.dirname(path)
    print("ok: %s created %s and its parents, 0700, uid %d; --validate created nothing" %
          (config, leaf, os.getuid()), flush=True)
    # A second start finds it in place.
    start_and_stop(cfg, admin, env, config + " (restart)")


def main():
    global BINARY
    if not SRC or not BINARY:
        fail("TT_SOURCE_DIR and TT_COLLECTOR_BIN must be set (run through ctest)")
    work = tempfile.mkdtemp(prefix="tt-spooldir-")
    os.chmod(work, 0o755)  # nobody must reach the directories below it
    try:
        for config in ("jaeger", "honeycomb"):
            check_created(config, work)

        # An existing spool directory other users can read is said, not refused.
        cfg, _, line = shipped("jaeger", work)
        shared = os.path.join(work, "shared")
        os.makedirs(os.path.join(shared, "jaeger"))
        os.chmod(os.path.join(shared, "jaeger"), 0o755)
        r = validate(cfg, env_for(shared))
        want = "%s:%d: exporters[0].spool.dir: warning: %s is open to other users (mode 0755)" % (
            cfg, line, os.path.join(shared, "jaeger"))
        if r.returncode != 0 or want not in r.stderr:
            fail("an open spool directory: --validate exit %d, wanted 0 and %r:\n%s" %
                 (r.returncode, want, r.stderr))
        print("ok: " + want, flush=True)

        # A parent that is a regular file: no user can create the spool there.
        cfg, _, line = shipped("jaeger", work)
        blocker = os.path.join(work, "not-a-dir")
        open(blocker, "w").close()
        expect_refusal(cfg, line, env_for(os.path.join(blocker, "spool")),
                       "a parent that is a file", "not a directory")

        # A parent the running user may not write: as root, run as nobody.
        locked = os.path.join(work, "locked")
        os.mkdir(locked, 0o755)
        if os.getuid() == 0:
            # nobody runs a copy of the collector from work/: the build tree may sit where only
            # root can enter (a CI clone in a mode-0700 directory from mktemp -d).
            copy = os.path.join(work, "tailtrace-collector")
            shutil.copy2(BINARY, copy)
            os.chmod(copy, 0o755)
            BINARY = copy

            def as_nobody():
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            cfg, _, line = shipped("jaeger", work)
            os.chmod(cfg, 0o644)
            env = env_for(os.path.join(locked, "a", "b"))
            # A TSan build reads its suppressions file at start: nobody needs a copy too.
            m = re.search(r"suppressions=([^ :]+)", env.get("TSAN_OPTIONS", ""))
            if m:
                supp = os.path.join(work, "tsan.supp")
                shutil.copy(m.group(1), supp)
                os.chmod(supp, 0o644)
                env["TSAN_OPTIONS"] = env["TSAN_OPTIONS"].replace(m.group(1), supp)
            expect_refusal(cfg, line, env, "a parent this user may not write",
                           "Permission denied", as_nobody)
        else:
            os.chmod(locked, 0o555)
            cfg, _, line = shipped("jaeger", work)
            expect_refusal(cfg, line, env_for(os.path.join(locked, "a", "b")),
                           "a parent this user may not write", "Permission denied")
        if os.path.exists(os.path.join(locked, "a")):
            fail("a refused start created %s" % os.path.join(locked, "a"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS", flush=True)


main()
