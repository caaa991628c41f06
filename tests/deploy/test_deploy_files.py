#!/usr/bin/python3
"""The deploy files agree with the collector they deploy. One scenario per ctest:

  systemd     `systemd-analyze verify` on deploy/tailtrace-collector.service (exit 77, reported
              as skipped, where systemd-analyze is missing); its state directory, working
              directory and spool variable agree; the configurations it may run validate with
              its environment; MemoryMax covers the default budget.
  kubernetes  deploy/kubernetes-sidecar.yaml: the ConfigMap's configuration passes --validate;
              started with it, the collector answers 200 on the probes' paths at the probes'
              port; the config is mounted where --config looks; the spool is on a writable
              volume; the memory limit covers memory.budget and the exporters' queues.
  compose     deploy/compose.yaml: Jaeger all-in-one, the collector built from deploy/Dockerfile
              running a configuration that image holds, its Jaeger endpoint a compose service
              on OTLP's 4317; the configuration validates with the compose environment.
  docker      deploy/Dockerfile: every file it COPYs from the context exists; the build runs
              deploy/install-deps.sh and CMake options and a target this project has; the
              runtime stage installs the Debian package of every library the built collector
              needs; the user is not root; the configuration it runs validates with its ENV.
              The image itself is built only where a Docker daemon answers (said either way).

Usage (through ctest, which sets TT_SOURCE_DIR, TT_BINARY_DIR, TT_COLLECTOR_BIN):
  test_deploy_files.py systemd|kubernetes|compose|docker"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import json
import tempfile
import time
import urllib.error
import urllib.request

import yaml

SRC = os.environ.get("TT_SOURCE_DIR", "")
BUILD = os.environ.get("TT_BINARY_DIR", "")
BINARY = os.environ.get("TT_COLLECTOR_BIN", "")
DEPLOY = os.path.join(SRC, "deploy")
SKIP = 77
MIB = 1 << 20


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def size_bytes(text):
    m = re.fullmatch(r"(\d+)\s*(B|KiB|MiB|GiB|Ki|Mi|Gi|M|G)?", str(text).strip())
    if not m:
        fail("cannot read the size %r" % text)
    unit = {None: 1, "B": 1, "KiB": 1 << 10, "Ki": 1 << 10, "MiB": MIB, "Mi": MIB, "M": MIB,
            "GiB": 1 << 30, "Gi": 1 << 30, "G": 1 << 30}[m.group(2)]
    return int(m.group(1)) * unit


def collector_defaults():
    """memory.budget and an exporter's queue_size by default, from the collector itself."""
    out = subprocess.run([BINARY, "--describe-config"], capture_output=True, text=True,
                         timeout=30).stdout
    budget = re.search(r"^\| `memory\.budget` \| size \| `(\d+[KMG]iB)`", out, re.M)
    queue = re.search(r"^\| `queue_size` \| size \| `(\d+[KMG]iB)`", out, re.M)
    if not budget or not queue:
        fail("--describe-config does not list memory.budget and exporters[].queue_size "
             "with a size:\n" + out[:2000])
    return size_bytes(budget.group(1)), size_bytes(queue.group(1))


def needed_memory(cfg):
    """What the deploy files' comments promise: 1.25 x memory.budget, plus each exporter's
    queue, plus 64 MiB for code and buffers (docs/operations.md, "Memory sizing")."""
    budget, queue = collector_defaults()
    budget = size_bytes(cfg.get("memory", {}).get("budget", budget))
    queues = sum(size_bytes(e.get("queue_size", queue)) for e in cfg.get("exporters") or [])
    return int(1.25 * budget) + queues + 64 * MIB


def validate(path, env, what):
    r = subprocess.run([BINARY, "--config", path, "--validate"], capture_output=True, text=True,
                       env=env, timeout=30)
    if r.returncode != 0:
        fail("%s: --validate exit %d:\n%s%s" % (what, r.returncode, r.stdout, r.stderr))
    ok("%s validates: %s" % (what, r.stdout.strip()))


def expand(text, env):
    """${VAR:-default} and ${VAR} as the collector expands them, for reading a path."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}",
                  lambda m: env.get(m.group(1)) or (m.group(2) or ""), text)


# --- systemd -------------------------------------------------------------------------------

def unit_keys(path):
    keys = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    return keys


def scenario_systemd(work):
    path = os.path.join(DEPLOY, "tailtrace-collector.service")
    keys = unit_keys(path)
    one = lambda k: (keys.get(k) or [None])[-1]
    exe = "/usr/bin/tailtrace-collector"
    for k in ("ExecStart", "ExecStartPre"):
        if not one(k) or not one(k).startswith(exe + " --config "):
            fail("%s is %r, wanted %s --config FILE" % (k, one(k), exe))
    config = one("ExecStart").split()[2]
    if one("ExecStartPre") != "%s --config %s --validate" % (exe, config):
        fail("ExecStartPre does not validate the file ExecStart runs")
    if one("ExecReload") != "/bin/kill -HUP $MAINPID":
        fail("ExecReload is %r" % one("ExecReload"))
    # The collector must act on SIGHUP, or ExecReload would kill it (SIGHUP's default).
    if "SIGHUP" not in open(os.path.join(SRC, "collector", "main.c")).read():
        fail("collector/main.c does not handle SIGHUP")
    state = one("StateDirectory")
    env = dict(v.split("=", 1) for v in keys.get("Environment", []))
    if state != "tailtrace" or one("WorkingDirectory") != "/var/lib/" + state:
        fail("StateDirectory %r, WorkingDirectory %r" % (state, one("WorkingDirectory")))
    if not env.get("TT_SPOOL_DIR", "").startswith("/var/lib/%s/" % state):
        fail("TT_SPOOL_DIR=%r is not in the state directory (ProtectSystem=strict makes the "
             "rest read-only)" % env.get("TT_SPOOL_DIR"))
    for k, v in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                 ("DynamicUser", "yes"), ("Restart", "on-failure")):
        if one(k) != v:
            fail("%s=%r, wanted %s" % (k, one(k), v))
    if not one("RestrictAddressFamilies") or "AF_INET" not in one("RestrictAddressFamilies"):
        fail("RestrictAddressFamilies=%r" % one("RestrictAddressFamilies"))
    ok("unit: ExecStart/ExecStartPre/ExecReload, StateDirectory=%s = WorkingDirectory, "
       "TT_SPOOL_DIR=%s inside it" % (state, env["TT_SPOOL_DIR"]))

    # Every configuration the unit may run, with its environment, the state directory moved to
    # a scratch one (this host's /var/lib is not the service's).
    root = os.path.join(work, "var-lib")
    for name in ("tailtrace-collector.yaml", "jaeger.yaml", "honeycomb.yaml"):
        e = dict(os.environ, HONEYCOMB_API_KEY="test-key",
                 TT_SPOOL_DIR=env["TT_SPOOL_DIR"].replace("/var/lib/", root + "/", 1))
        os.makedirs(root + "/" + state, exist_ok=True)
        here = os.getcwd()
        os.chdir(root + "/" + state)  # WorkingDirectory: the file sink's ./tailtrace-traces.jsonl
        try:
            validate(os.path.join(DEPLOY, name), e, "%s with the unit's environment" % name)
        finally:
            os.chdir(here)
    budget, queue = collector_defaults()
    need = int(1.25 * budget) + queue + 64 * MIB
    mem_max = size_bytes(one("MemoryMax"))
    if mem_max < need or size_bytes(one("MemoryHigh")) > mem_max:
        fail("MemoryMax %s under the %d MiB the default budget needs, or MemoryHigh above it" %
             (one("MemoryMax"), need // MIB))
    ok("MemoryMax=%s >= 1.25 x %d MiB + %d MiB queue + 64 MiB = %d MiB" %
       (one("MemoryMax"), budget // MIB, queue // MIB, need // MIB))

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("SKIP: systemd-analyze is not installed; the unit was not verified", flush=True)
        sys.exit(SKIP)
    # verify checks that every command exists: the unit's binary path is the installed one, so
    # point it at the built binary, and nothing else changes.
    text = open(path).read().replace(exe, BINARY)
    copy = os.path.join(work, "tailtrace-collector.service")
    with open(copy, "w") as f:
        f.write(text)
    r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, timeout=60)
    # Only lines about this unit count: verify also reports on the host's own units.
    mine = [l for l in (r.stdout + r.stderr).splitlines() if "tailtrace-collector" in l]
    if r.returncode != 0 or mine:
        fail("systemd-analyze verify exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
    ok("systemd-analyze verify: clean (%s)" % subprocess.run(
        [analyze, "--version"], capture_output=True, text=True).stdout.splitlines()[0])
    r = subprocess.run([analyze, "security", "--offline=true", copy], capture_output=True,
                       text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", r.stdout + r.stderr)
    if m:
        ok("systemd-analyze security: exposure %s %s" % (m.group(1), m.group(2)))
        if float(m.group(1)) > 3.0:
            fail("exposure %s is above 3.0 (OK):\n%s" % (m.group(1), r.stdout))


# --- kubernetes ----------------------------------------------------------------------------

def get_ready(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def scenario_kubernetes(work):
    docs = list(yaml.safe_load_all(open(os.path.join(DEPLOY, "kubernetes-sidecar.yaml"))))
    cms = [d for d in docs if d and d.get("kind") == "ConfigMap"]
    deps = [d for d in docs if d and d.get("kind") == "Deployment"]
    if len(cms) != 1 or len(deps) != 1:
        fail("wanted one ConfigMap and one Deployment, got %d and %d" % (len(cms), len(deps)))
    cm, dep = cms[0], deps[0]
    pod = dep["spec"]["template"]["spec"]
    cols = [c for c in pod["containers"] if c["name"] == "tailtrace-collector"]
    if len(cols) != 1 or len(pod["containers"]) < 2:
        fail("wanted the collector beside an application container")
    col = cols[0]
    args = col.get("args", [])
    if len(args) != 2 or args[0] != "--config":
        fail("collector args %r" % args)
    mounts = {m["name"]: m for m in col.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cfg_dir, cfg_file = os.path.split(args[1])
    cfg_vol = [n for n, m in mounts.items() if m["mountPath"] == cfg_dir]
    if not cfg_vol or vols[cfg_vol[0]].get("configMap", {}).get("name") != cm["metadata"]["name"]:
        fail("--config %s is not in the ConfigMap %s's mount" % (args[1], cm["metadata"]["name"]))
    if cfg_file not in cm["data"]:
        fail("the ConfigMap has no key %s" % cfg_file)
    text = cm["data"][cfg_file]
    cfg = yaml.safe_load(text)
    ok("--config %s is the ConfigMap's %s" % (args[1], cfg_file))

    # The spool lives on a writable volume (the root filesystem is read-only).
    env = {e["name"]: e["value"] for e in col.get("env", [])}
    if col.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
        fail("the collector's root filesystem is not read-only")
    for i, e in enumerate(cfg.get("exporters") or []):
        spool = expand(e.get("spool", {}).get("dir", ""), env)
        if spool and not any(spool.startswith(m["mountPath"].rstrip("/") + "/") and
                             not m.get("readOnly") for m in mounts.values()):
            fail("exporters[%d].spool.dir %s is on no writable volume" % (i, spool))
        ok("exporters[%d].spool.dir %s is on a writable volume" % (i, spool))
    sc = pod.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True or not sc.get("runAsUser"):
        fail("the pod may run as root")

    need = needed_memory(cfg)
    limit = size_bytes(col["resources"]["limits"]["memory"])
    if limit < need:
        fail("memory limit %d MiB under 1.25 x budget + queues + 64 MiB = %d MiB" %
             (limit // MIB, need // MIB))
    ok("memory limit %d MiB >= %d MiB (budget %s)" % (limit // MIB, need // MIB,
                                                     cfg["memory"]["budget"]))

    path = os.path.join(work, cfg_file)
    with open(path, "w") as f:
        f.write(text)
    probes = {k: col[k]["httpGet"] for k in ("readinessProbe", "livenessProbe")}
    if probes["readinessProbe"]["path"] != "/readyz" or \
            probes["livenessProbe"]["path"] != "/healthz":
        fail("probes %r" % probes)
    admin_ep = expand(cfg["admin"]["endpoint"], {})
    admin_port = int(admin_ep.rsplit(":", 1)[1])
    for k, p in probes.items():
        if int(p["port"]) != admin_port:
            fail("%s on port %s, the admin port is %d" % (k, p["port"], admin_port))
    # Start it as the pod would, every port moved to a free one on loopback.
    port = free_port()
    e = dict(os.environ, TT_SPOOL_DIR=os.path.join(work, "spool"),
             TT_ADMIN_BIND="127.0.0.1:%d" % port, TT_GRPC_BIND="127.0.0.1:%d" % free_port(),
             TT_HTTP_BIND="127.0.0.1:%d" % free_port(),
             JAEGER_OTLP_GRPC="127.0.0.1:%d" % free_port())
    validate(path, e, "the ConfigMap's configuration")
    p = subprocess.Popen([BINARY, "--config", path], env=e, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        end = time.time() + 30
        while time.time() < end and p.poll() is None and \
                get_ready(port, probes["readinessProbe"]["path"]) != 200:
            time.sleep(0.1)
        for k, pr in probes.items():
            st = get_ready(port, pr["path"])
            if st != 200:
                fail("%s GET %s answered %r" % (k, pr["path"], st))
            ok("%s: GET %s -> 200" % (k, pr["path"]))
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        if p.returncode != 0:
            fail("exit %d after SIGTERM:\n%s" % (p.returncode, p.stderr.read()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= 10:
        fail("terminationGracePeriodSeconds %d leaves no time past shutdown.deadline" % grace)


# --- Dockerfile and compose ----------------------------------------------------------------

def dockerfile():
    """(stages, instructions) of deploy/Dockerfile: instructions are (stage, verb, args)."""
    text = open(os.path.join(DEPLOY, "Dockerfile")).read().replace("\\\n", " ")
    out, stage = [], -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        verb, _, rest = line.partition(" ")
        if verb.upper() == "FROM":
            stage += 1
        out.append((stage, verb.upper(), rest.strip()))
    return stage + 1, out


def image_files(ins):
    """Paths in the final image -> the source file they come from (COPY sources in the tree)."""
    files = {}
    for stage, verb, rest in ins:
        if verb != "COPY" or stage == 0:
            continue
        parts = rest.split()
        if not parts[0].startswith("--from="):
            continue
        srcs, dest = parts[1:-1], parts[-1]
        for s in srcs:
            rel = os.path.relpath(s, "/src")
            target = dest + os.path.basename(s) if dest.endswith("/") else dest
            files[target] = os.path.join(SRC, rel)
    return files


def scenario_docker(work):
    nstages, ins = dockerfile()
    if nstages < 2:
        fail("the Dockerfile is not multi-stage")
    froms = [rest for _, v, rest in ins if v == "FROM"]
    if not all(re.match(r"debian:12(\b|-)", f) for f in froms):
        fail("every stage must be Debian 12: %r" % froms)
    for stage, verb, rest in ins:
        if verb != "COPY" or rest.startswith("--from="):
            continue
        for s in rest.split()[:-1]:
            if not os.path.exists(os.path.join(SRC, s)):
                fail("COPY %s: no such file in the tree" % s)
    # `COPY . .` takes the tree; what must stay out of it is listed beside the Dockerfile.
    ignore = open(os.path.join(DEPLOY, "Dockerfile.dockerignore")).read().split()
    for must in (".git", "build*/", "**/node_modules"):
        if must not in ignore:
            fail("deploy/Dockerfile.dockerignore does not leave out %s" % must)
    ok("every COPY from the build context exists; %d stages, all %s" % (nstages, froms))
    runs = " ; ".join(rest for st, v, rest in ins if v == "RUN" and st == 0)
    if "bash deploy/install-deps.sh" not in runs:
        fail("the build stage does not install with deploy/install-deps.sh")
    cmake = re.search(r"cmake -S \. -B (\S+) (.*?) && cmake --build \1 .*?--target (\S+)", runs)
    if not cmake:
        fail("no cmake configure and build of a target in: " + runs)
    root_cmake = open(os.path.join(SRC, "CMakeLists.txt")).read()
    for opt in re.findall(r"-D(TT_\w+)=", cmake.group(2)):
        if not re.search(r"option\(%s\b" % opt, root_cmake):
            fail("-D%s is not an option of CMakeLists.txt" % opt)
    targets = subprocess.run(["cmake", "--build", BUILD, "--target", "help"],
                             capture_output=True, text=True, timeout=60).stdout
    if not re.search(r"\b%s\b" % re.escape(cmake.group(3)), targets):
        fail("the target %s is not one of this build's" % cmake.group(3))
    ok("build stage: deploy/install-deps.sh, cmake %s --target %s (options and target exist)" %
       (cmake.group(2).strip(), cmake.group(3)))
    if "build/collector/tailtrace-collector" not in \
            " ".join(r for _, v, r in ins if v == "COPY"):
        fail("the runtime stage does not copy build/collector/tailtrace-collector")

    # Runtime packages: the Debian package of every library the binary links directly.
    final = [(v, r) for st, v, r in ins if st == nstages - 1]
    apt = " ".join(r for v, r in final if v == "RUN")
    m = re.search(r"apt-get install (.*?)(&&|$)", apt)
    pkgs = set(w for w in (m.group(1).split() if m else []) if not w.startswith("-"))
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", subprocess.run(
        ["readelf", "-d", BINARY], capture_output=True, text=True).stdout)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    base = {"libc6", "libgcc-s1"}  # in every Debian image
    # What apt installs with them: their dependencies, followed through (as installed here).
    closure = installed_closure(pkgs | base)
    missing = []
    for lib in needed:
        hit = re.search(r"^\s*%s \(.*\) => (\S+)$" % re.escape(lib), cache, re.M)
        if not hit:
            fail("ldconfig does not know %s" % lib)
        real = os.path.realpath(hit.group(1))
        owner = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True).stdout
        if not owner:  # /lib is a symlink to /usr/lib on Debian 12: dpkg knows one spelling
            alt = real[4:] if real.startswith("/usr/") else "/usr" + real
            owner = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True).stdout
        pkg = owner.split(":")[0]
        if sanitizer_lib(lib):
            continue
        if pkg not in closure:
            missing.append("%s (%s)" % (lib, pkg or "no package"))
    if missing:
        fail("the runtime stage does not install: " + ", ".join(missing))
    ok("runtime stage installs the package of each of %d needed libraries (%d packages with "
       "their dependencies)" % (len(needed), len(closure)))

    user = [r for v, r in final if v == "USER"]
    if not user or user[-1].split(":")[0] in ("root", "0"):
        fail("the image runs as root")
    entry = [r for v, r in final if v == "ENTRYPOINT"]
    cmd = [r for v, r in final if v == "CMD"]
    files = image_files(ins)
    exe = json.loads(entry[-1])[0]
    args = json.loads(cmd[-1])
    if exe not in files or args[0] != "--config" or args[1] not in files:
        fail("ENTRYPOINT %s / CMD %s are not files the image copies: %s" % (exe, args, files))
    env = {}
    for v, r in final:
        if v == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", r)))
    e = dict(os.environ, **env)
    e["TT_SPOOL_DIR"] = os.path.join(work, "spool")
    # The image listens on every interface; here, free ports on loopback.
    for k in ("TT_GRPC_BIND", "TT_HTTP_BIND", "TT_ADMIN_BIND"):
        e[k] = "127.0.0.1:%d" % free_port()
    here = os.getcwd()
    os.chdir(work)  # WORKDIR: the file sink writes there
    try:
        validate(files[args[1]], e, "the image's %s (%s)" % (args[1], os.path.relpath(
            files[args[1]], SRC)))
    finally:
        os.chdir(here)
    ok("USER %s; ENTRYPOINT %s; ENV %s" % (user[-1], exe, " ".join(sorted(env))))

    docker = shutil.which("docker")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30) \
        if docker else None
    if info is None or info.returncode != 0:
        print("NOTE: no Docker daemon answers here (%s): the image was not built; what can be "
              "checked without it was." % ("no docker command" if info is None else
                                          (info.stderr.strip().splitlines() or ["?"])[-1]),
              flush=True)
        return
    r = subprocess.run([docker, "build", "-f", os.path.join(DEPLOY, "Dockerfile"), "-t",
                        "tailtrace-collector:test", SRC], capture_output=True, text=True,
                       timeout=1500)
    if r.returncode != 0:
        fail("docker build failed:\n" + r.stderr[-4000:])
    ok("docker build: done")


def installed_closure(pkgs):
    """pkgs and every package they depend on, read from this host's dpkg database."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Depends},${Pre-Depends}", p],
                           capture_output=True, text=True)
        for alt in r.stdout.split(","):
            # "a (>= 1) | b": any alternative satisfies it; follow the installed ones.
            for choice in alt.split("|"):
                name = choice.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


def sanitizer_lib(lib):
    # A sanitizer build links its runtime; a release image has none.
    return re.match(r"lib(a|ub|t|l)san\.so", lib) is not None


def scenario_compose(work):
    c = yaml.safe_load(open(os.path.join(DEPLOY, "compose.yaml")))
    sv = c["services"]
    jaeger = [n for n, s in sv.items() if s.get("image", "").startswith(
        "jaegertracing/all-in-one:")]
    cols = [n for n, s in sv.items() if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"]
    if len(jaeger) != 1 or len(cols) != 1:
        fail("wanted one jaegertracing/all-in-one and one collector built from deploy/Dockerfile")
    col = sv[cols[0]]
    if os.path.normpath(os.path.join(DEPLOY, col["build"]["context"])) != os.path.normpath(SRC):
        fail("the build context %s is not the repository's root" % col["build"]["context"])
    _, ins = dockerfile()
    files = image_files(ins)
    cmd = col["command"]
    if cmd[0] != "--config" or cmd[1] not in files:
        fail("--config %s is not a file the image holds (%s)" % (cmd[1], sorted(files)))
    env = {k: str(v) for k, v in col.get("environment", {}).items()}
    cfg = yaml.safe_load(open(files[cmd[1]]))
    eps = [expand(e["endpoint"], env) for e in cfg.get("exporters") or []]
    if "%s:4317" % jaeger[0] not in eps:
        fail("no exporter of %s reaches %s:4317 (OTLP gRPC): %r" % (cmd[1], jaeger[0], eps))
    ok("%s forwards to %s:4317 (the Jaeger service's OTLP port)" % (cmd[1], jaeger[0]))
    ports = [str(p).split(":")[-1] for p in col.get("ports", [])]
    for want in ("4317", "4318", "13133"):
        if want not in ports:
            fail("port %s is not published: %r" % (want, ports))
    hc = col["healthcheck"]["test"]
    if hc[1] != "tailtrace-collector" or "top" not in hc or "--once" not in hc:
        fail("healthcheck %r" % hc)
    # The healthcheck fails while nothing listens and passes against a running collector.
    port = free_port()
    probe = [BINARY] + hc[2:]
    probe[probe.index("--admin") + 1] = "127.0.0.1:%d" % port
    r = subprocess.run(probe, capture_output=True, timeout=30)
    if r.returncode == 0:
        fail("the healthcheck passes with no collector")
    e = dict(os.environ, **env)
    e.update(TT_SPOOL_DIR=os.path.join(work, "spool"), TT_ADMIN_BIND="127.0.0.1:%d" % port,
             TT_GRPC_BIND="127.0.0.1:%d" % free_port(), TT_HTTP_BIND="127.0.0.1:%d" % free_port(),
             JAEGER_OTLP_GRPC="127.0.0.1:%d" % free_port())
    validate(files[cmd[1]], e, "compose's %s" % cmd[1])
    p = subprocess.Popen([BINARY, "--config", files[cmd[1]]], env=e, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 30
        while time.time() < end and get_ready(port, "/healthz") != 200:
            time.sleep(0.1)
        r = subprocess.run(probe, capture_output=True, timeout=30)
        if r.returncode != 0:
            fail("the healthcheck fails against a running collector: %s" % r.stderr)
        ok("healthcheck: fails with no collector, passes with one")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    if not SRC or not BINARY or not BUILD or len(sys.argv) != 2:
        fail("usage: test_deploy_files.py systemd|kubernetes|compose|docker (through ctest)")
    scenarios = {"systemd": scenario_systemd, "kubernetes": scenario_kubernetes,
                 "compose": scenario_compose, "docker": scenario_docker}
    if sys.argv[1] not in scenarios:
        fail("unknown scenario %s" % sys.argv[1])
    work = tempfile.mkdtemp(prefix="tt-deploy-")
    try:
        scenarios[sys.argv[1]](work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS", flush=True)


main()
