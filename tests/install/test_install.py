#!/usr/bin/python3
"""Install tests: libtailtrace and the collector as a user gets them.

Usage: test_install.py CASE, with TT_SOURCE_DIR and TT_BINARY_DIR set (ctest does), and
optionally TT_INSTALL_CC / TT_INSTALL_CFLAGS (the build's compiler and sanitizer flags, which
programs linking a sanitized libtailtrace must share).

Cases:
  install    `make install PREFIX=<work>/prefix`: the tree it makes (SONAMEs, header, archive,
             pkg-config and CMake files, collector, configuration), `tailtrace-collector --help`
             and the installed configuration validating.
  pkgconfig  programs built with pkg-config, shared and static, export a span over OTLP/HTTP to
             a real receiver (tests/peers/otlp_receiver.py) without loading gRPC, Abseil or
             libstdc++ (ldd); over OTLP/gRPC they load libtailtrace-grpc on demand, or linked;
             without it they fail with an error naming it. Prints the ldd counts and sizes.
  cmake      find_package(tailtrace): tailtrace::tailtrace, ::tailtrace_static, ::grpc.
  subdir     add_subdirectory(tailtrace) from a consumer: only the library's dependencies are
             looked for, and the programs work.
  libonly    the library-only build of docs/install.md looks for none of the collector's or the
             tests' dependencies and builds the three libraries.
  header     tailtrace.h compiles as C99, C11, C++11 and C++20 with -Wall -Wextra -Werror.
  deb        `make deb`: four packages with the right names, Depends and files; apt-get resolves
             them (simulated: this machine is not reinstalled); programs build and run against
             the packages' files unpacked into a scratch root.
Each case exits 0 when every check holds and prints what failed otherwise.
"""

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request

SRC = os.environ["TT_SOURCE_DIR"]
BUILD = os.environ["TT_BINARY_DIR"]
WORK = os.path.join(BUILD, "tests", "install", "work")
PREFIX = os.path.join(WORK, "prefix")
CC = os.environ.get("TT_INSTALL_CC") or "cc"
SAN = shlex.split(os.environ.get("TT_INSTALL_CFLAGS", ""))
APP = os.path.join(SRC, "tests", "install", "app.c")
VERSION = "0.1.0"
HEAVY = re.compile(r"grpc|absl|libstdc\+\+|libgpr|libupb|libre2|libcares")

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def run(cmd, env=None, cwd=None, timeout=240, shell=False):
    """Runs cmd; returns (exit status, stdout+stderr). Never raises on failure."""
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.run(cmd, env=full, cwd=cwd, timeout=timeout, shell=shell,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def must(cmd, what, **kw):
    rc, out = run(cmd, **kw)
    if not check(rc == 0, what):
        print(out[-4000:])
    return rc == 0, out


def libdir(prefix):
    """The installed library folder: lib/ or Debian's multiarch lib/<triplet>/."""
    for cand in glob.glob(os.path.join(prefix, "lib", "*", "libtailtrace.so.0")) + \
            glob.glob(os.path.join(prefix, "lib", "libtailtrace.so.0")):
        return os.path.dirname(cand)
    return os.path.join(prefix, "lib")


def ldd(path, env=None):
    rc, out = run(["ldd", path], env=env)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def baseline():
    """The libraries an empty program built with the same flags loads (libc, the sanitizer
    runtime and what it pulls in): ldd's lists are compared net of these."""
    # Per process: the cases run in parallel.
    src = os.path.join(WORK, "empty-%d.c" % os.getpid())
    exe = os.path.join(WORK, "empty-%d" % os.getpid())
    with open(src, "w") as f:
        f.write("int main(void) { return 0; }\n")
    run([CC] + SAN + [src, "-o", exe])
    libs = set(ldd(exe))
    for f in (src, exe):
        if os.path.exists(f):
            os.remove(f)
    return libs


class Receiver:
    """tests/peers/otlp_receiver.py: a real OTLP/gRPC and OTLP/HTTP receiver."""

    def __init__(self):
        self.p = subprocess.Popen(["/usr/bin/python3",
                                   os.path.join(SRC, "tests", "peers", "otlp_receiver.py")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().split()
        if not line or line[0] != "READY":
            self.p.kill()
            raise SystemExit("otlp_receiver.py did not start (needs python3-grpcio)")
        self.grpc = int(line[1].split("=")[1])
        self.http = int(line[2].split("=")[1])

    def labels(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/_control/dump" % self.http,
                                    timeout=10) as r:
            dump = r.read().decode()
        return re.findall(r"key=check\.label value=s:(\S+)", dump)

    def env(self, proto, label):
        port = self.grpc if proto == "grpc" else self.http
        return {"OTEL_EXPORTER_OTLP_PROTOCOL": proto, "INSTALL_CHECK_LABEL": label,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % port,
                "OTEL_EXPORTER_OTLP_TIMEOUT": "5000", "OTEL_TRACES_EXPORTER": "otlp"}

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def export_check(recv, exe, proto, label, extra_env=None):
    """Runs exe exporting one span; checks it exits 0 and the receiver got the span."""
    env = recv.env(proto, label)
    env.update(extra_env or {})
    rc, out = run([exe], env=env, timeout=60)
    ok = check(rc == 0, "%s exports over %s (exit %d)" % (label, proto, rc))
    if not ok:
        print(out)
    check(label in recv.labels(), "the receiver got %s's span over %s" % (label, proto))


def pkg_config(prefix, *args):
    env = {"PKG_CONFIG_PATH": os.path.join(libdir(prefix), "pkgconfig")}
    rc, out = run(["pkg-config"] + list(args), env=env)
    if not check(rc == 0, "pkg-config %s" % " ".join(args)):
        print(out)
    return shlex.split(out)


def build_with_pkg_config(prefix, outdir):
    """The docs' link lines: shared, static (archive + Libs.private), and gRPC linked."""
    os.makedirs(outdir, exist_ok=True)
    exes = {}
    cflags = pkg_config(prefix, "--cflags", "tailtrace")
    shared = os.path.join(outdir, "app_shared")
    must([CC] + SAN + [APP, "-o", shared] + cflags + pkg_config(prefix, "--libs", "tailtrace"),
         "cc app.c $(pkg-config --cflags --libs tailtrace)")
    exes["shared"] = shared
    static = os.path.join(outdir, "app_static")
    archive = os.path.join(pkg_config(prefix, "--variable=libdir", "tailtrace")[0],
                           "libtailtrace.a")
    must([CC] + SAN + [APP, "-o", static] + cflags +
         [archive, "-Wl,--as-needed"] + pkg_config(prefix, "--static", "--libs", "tailtrace"),
         "cc app.c libtailtrace.a -Wl,--as-needed $(pkg-config --static --libs tailtrace)")
    exes["static"] = static
    grpc = os.path.join(outdir, "app_grpc")
    must([CC] + SAN + [APP, "-o", grpc] + cflags + pkg_config(prefix, "--libs", "tailtrace-grpc"),
         "cc app.c $(pkg-config --cflags --libs tailtrace-grpc)")
    exes["grpc"] = grpc
    return exes


def case_install():
    shutil.rmtree(PREFIX, ignore_errors=True)
    os.makedirs(WORK, exist_ok=True)
    ok, out = must(["make", "--no-print-directory", "-C", SRC, "install", "PREFIX=" + PREFIX,
                    "BUILD=" + BUILD, "JOBS=2"], "make install PREFIX=%s" % PREFIX, timeout=280)
    if not ok:
        return
    lib = libdir(PREFIX)
    for rel in ["include/tailtrace.h", "bin/tailtrace-collector",
                "etc/tailtrace/tailtrace-collector.yaml"]:
        check(os.path.isfile(os.path.join(PREFIX, rel)), "installed " + rel)
    for name in ["libtailtrace.so.%s" % VERSION, "libtailtrace-grpc.so.%s" % VERSION,
                 "libtailtrace.a", "pkgconfig/tailtrace.pc", "pkgconfig/tailtrace-grpc.pc",
                 "cmake/tailtrace/tailtraceConfig.cmake",
                 "cmake/tailtrace/tailtraceConfigVersion.cmake"]:
        check(os.path.isfile(os.path.join(lib, name)), "installed lib/" + name)
    for link, target in [("libtailtrace.so", "libtailtrace.so.0"),
                         ("libtailtrace.so.0", "libtailtrace.so.%s" % VERSION),
                         ("libtailtrace-grpc.so.0", "libtailtrace-grpc.so.%s" % VERSION)]:
        p = os.path.join(lib, link)
        check(os.path.islink(p) and os.readlink(p) == target, "%s -> %s" % (link, target))
    for so, soname in [("libtailtrace.so.%s" % VERSION, "libtailtrace.so.0"),
                       ("libtailtrace-grpc.so.%s" % VERSION, "libtailtrace-grpc.so.0")]:
        rc, out = run(["readelf", "-d", os.path.join(lib, so)])
        check("Library soname: [%s]" % soname in out, "%s has SONAME %s" % (so, soname))
    rc, out = run(["readelf", "-d", os.path.join(lib, "libtailtrace.so.%s" % VERSION)])
    needed = re.findall(r"Shared library: \[([^\]]+)\]", out)
    check(not any(HEAVY.search(n) for n in needed),
          "libtailtrace.so needs no gRPC, Abseil or C++ runtime: %s" % ", ".join(needed))
    rc, out = run(["nm", "-D", "--defined-only", os.path.join(lib, "libtailtrace-grpc.so.0")])
    exported = sorted(line.split()[2] for line in out.splitlines()
                      if len(line.split()) == 3 and line.split()[1] in "TDBRVW")
    check(exported == ["tt_grpc_plugin_transport_new"],
          "libtailtrace-grpc exports its entry only: %s" % ", ".join(exported))
    with open(os.path.join(SRC, "include", "tailtrace.h")) as a, \
            open(os.path.join(PREFIX, "include", "tailtrace.h")) as b:
        check(a.read() == b.read(), "the installed header is the source's")
    unit = os.path.join(SRC, "deploy", "tailtrace-collector.service")
    if os.path.exists(unit):
        check(os.path.isfile(os.path.join(PREFIX, "lib/systemd/system/tailtrace-collector.service")),
              "installed the systemd unit")
    else:
        print("note  deploy/tailtrace-collector.service is not in this tree; no unit to install")
    collector = os.path.join(PREFIX, "bin", "tailtrace-collector")
    rc, out = run([collector, "--help"])
    check(rc == 0 and all(o in out for o in ["--config", "--validate", "--strict", "--version",
                                             "--describe-config"]),
          "tailtrace-collector --help lists its options")
    must([collector, "--config", os.path.join(PREFIX, "etc/tailtrace/tailtrace-collector.yaml"),
          "--validate"], "the installed configuration validates")


def case_pkgconfig():
    lib = libdir(PREFIX)
    out = os.path.join(WORK, "pkgconfig")
    exes = build_with_pkg_config(PREFIX, out)
    env = {"LD_LIBRARY_PATH": lib}
    base = baseline()
    shared_libs = ldd(exes["shared"], env)
    added = sorted(set(shared_libs) - base)
    check(not any(HEAVY.search(n) for n in added),
          "ldd of the HTTP-export program shows no grpc, absl or libstdc++")
    check(any("libtailtrace.so.0" in n for n in shared_libs), "it loads libtailtrace.so.0")
    static_libs = ldd(exes["static"], env)
    check(not any("libtailtrace" in n for n in static_libs)
          and not any(HEAVY.search(n) for n in set(static_libs) - base),
          "the static program loads no libtailtrace, gRPC, Abseil or libstdc++")
    grpc_libs = ldd(exes["grpc"], env)
    check(any("libtailtrace-grpc.so.0" in n for n in grpc_libs)
          and any("libgrpc.so" in n for n in grpc_libs),
          "the program linked with tailtrace-grpc loads it (and gRPC) at start-up")
    size = lambda p: os.path.getsize(os.path.realpath(p))
    print("figures: ldd_http=%d ldd_grpc=%d ldd_static=%d libtailtrace.so=%d libtailtrace-grpc.so=%d "
          "libtailtrace.a=%d app_shared=%d app_grpc=%d app_static=%d baseline=%d" % (
              len(shared_libs), len(grpc_libs), len(static_libs), size(os.path.join(lib, "libtailtrace.so.0")),
              size(os.path.join(lib, "libtailtrace-grpc.so.0")),
              size(os.path.join(lib, "libtailtrace.a")), size(exes["shared"]),
              size(exes["grpc"]), size(exes["static"]), len(base)))

    recv = Receiver()
    try:
        export_check(recv, exes["shared"], "http/protobuf", "pc-shared-http", env)
        export_check(recv, exes["static"], "http/protobuf", "pc-static-http", env)
        # On demand: neither program links libtailtrace-grpc; the shared library finds it on
        # the search path, the static one too.
        export_check(recv, exes["shared"], "grpc", "pc-shared-grpc-ondemand", env)
        export_check(recv, exes["static"], "grpc", "pc-static-grpc-ondemand", env)
        export_check(recv, exes["grpc"], "grpc", "pc-grpc-linked", env)
        # Installed where the dynamic linker does not search (the program finds libtailtrace by
        # its RUNPATH, which does not apply to libtailtrace's own dlopen), libtailtrace finds
        # the gRPC transport next to itself.
        rpath = os.path.join(out, "app_rpath")
        must([CC] + SAN + [APP, "-o", rpath] + pkg_config(PREFIX, "--cflags", "--libs", "tailtrace")
             + ["-Wl,-rpath," + lib, "-Wl,--enable-new-dtags"], "cc app.c ... -Wl,-rpath,LIBDIR")
        export_check(recv, rpath, "grpc", "pc-rpath-grpc-beside", {"LD_LIBRARY_PATH": ""})
        # Absent altogether, the program gets a clear error naming the library.
        lone = os.path.join(WORK, "core-only")
        shutil.rmtree(lone, ignore_errors=True)
        os.makedirs(lone)
        shutil.copy(os.path.join(lib, "libtailtrace.so.0"), lone)
        rc, outp = run([exes["shared"]], env=dict(recv.env("grpc", "pc-missing-grpc"),
                                                   LD_LIBRARY_PATH=lone))
        check(rc == 2 and "libtailtrace-grpc.so.0" in outp and "could not be loaded" in outp,
              "without libtailtrace-grpc a grpc exporter fails naming the library (exit %d)" % rc)
        print(outp.strip())
        check("pc-missing-grpc" not in recv.labels(), "and nothing was sent")
        rc, outp = run([exes["shared"]], env=dict(recv.env("http/protobuf", "pc-core-only-http"),
                                                   LD_LIBRARY_PATH=lone))
        check(rc == 0 and "pc-core-only-http" in recv.labels(),
              "libtailtrace.so alone exports over HTTP")
    finally:
        recv.close()
    rc, outp = run([exes["shared"]], env={"LD_LIBRARY_PATH": lib, "OTEL_TRACES_EXPORTER": "none"})
    check(rc == 0, "with OTEL_TRACES_EXPORTER=none the span is recorded and ended")


def cmake_build(srcdir, bindir, defs):
    shutil.rmtree(bindir, ignore_errors=True)
    flags = " ".join(SAN)
    ok, _ = must(["cmake", "-S", srcdir, "-B", bindir, "-DCMAKE_C_COMPILER=" + CC,
                  "-DCMAKE_C_FLAGS=" + flags, "-DCMAKE_EXE_LINKER_FLAGS=" + flags,
                  "-DCMAKE_SHARED_LINKER_FLAGS=" + flags] + defs,
                 "cmake configures %s" % os.path.basename(srcdir))
    if ok:
        ok, _ = must(["cmake", "--build", bindir, "-j2"], "cmake builds %s" %
                     os.path.basename(srcdir), timeout=280)
    return ok


def case_cmake():
    bindir = os.path.join(WORK, "cmake-consumer")
    if not cmake_build(os.path.join(SRC, "tests", "install", "cmake-consumer"), bindir,
                       ["-DCMAKE_PREFIX_PATH=" + PREFIX]):
        return
    env = {"LD_LIBRARY_PATH": libdir(PREFIX)}
    app = lambda n: os.path.join(bindir, n)
    base = baseline()
    check(not any(HEAVY.search(n) for n in set(ldd(app("app_shared"), env)) - base),
          "tailtrace::tailtrace loads no gRPC, Abseil or libstdc++")
    check(not any("libtailtrace" in n for n in ldd(app("app_static"), env)),
          "tailtrace::tailtrace_static needs no libtailtrace.so")
    check(any("libtailtrace-grpc.so.0" in n for n in ldd(app("app_grpc"), env)),
          "tailtrace::grpc records libtailtrace-grpc.so.0")
    recv = Receiver()
    try:
        export_check(recv, app("app_shared"), "http/protobuf", "cm-shared-http", env)
        export_check(recv, app("app_static"), "http/protobuf", "cm-static-http", env)
        export_check(recv, app("app_shared"), "grpc", "cm-shared-grpc-ondemand", env)
        export_check(recv, app("app_grpc"), "grpc", "cm-grpc-linked", env)
    finally:
        recv.close()


def collector_deps_absent(cache, where):
    # pkg_check_modules and find_library leave an entry for each module they looked for.
    for dep in ["LIBUV", "YAML", "OPENSSL", "CMOCKA", "HTTP_PARSER_LIB"]:
        check(re.search(r"^%s[_A-Z]*:" % dep, cache, re.M) is None,
              "%s does not look for %s" % (where, dep))


def case_libonly():
    # docs/install.md's library-only build, as written there.
    bindir = os.path.join(WORK, "build-lib")
    shutil.rmtree(bindir, ignore_errors=True)
    flags = " ".join(SAN)
    ok, _ = must(["cmake", "-S", SRC, "-B", bindir, "-DTT_BUILD_COLLECTOR=OFF",
                  "-DTT_BUILD_TESTS=OFF", "-DTT_BENCH=OFF", "-DCMAKE_C_FLAGS=" + flags,
                  "-DCMAKE_SHARED_LINKER_FLAGS=" + flags],
                 "cmake -S . -B build-lib -DTT_BUILD_COLLECTOR=OFF -DTT_BUILD_TESTS=OFF "
                 "-DTT_BENCH=OFF")
    if not ok:
        return
    collector_deps_absent(open(os.path.join(bindir, "CMakeCache.txt")).read(),
                          "the library-only build")
    ok, _ = must(["cmake", "--build", bindir, "-j2"], "cmake --build build-lib", timeout=280)
    nogrpc = os.path.join(WORK, "build-lib-nogrpc")
    shutil.rmtree(nogrpc, ignore_errors=True)
    if must(["cmake", "-S", SRC, "-B", nogrpc, "-DTT_BUILD_COLLECTOR=OFF", "-DTT_BUILD_TESTS=OFF",
             "-DTT_BENCH=OFF", "-DTT_BUILD_GRPC=OFF"], "configure with -DTT_BUILD_GRPC=OFF")[0]:
        cache = open(os.path.join(nogrpc, "CMakeCache.txt")).read()
        check(re.search(r"^GRPC[_A-Z]*:", cache, re.M) is None,
              "-DTT_BUILD_GRPC=OFF does not look for gRPC")
    shutil.rmtree(nogrpc, ignore_errors=True)
    if ok:
        for f in ["agent/libtailtrace.so.0", "agent/libtailtrace.a",
                  "agent/libtailtrace-grpc.so.0"]:
            check(os.path.exists(os.path.join(bindir, f)), "build-lib has " + f)
        check(not os.path.exists(os.path.join(bindir, "collector")), "and no collector")
        libprefix = os.path.join(WORK, "libonly-prefix")
        shutil.rmtree(libprefix, ignore_errors=True)
        if must(["cmake", "--install", bindir, "--prefix", libprefix],
                "cmake --install build-lib --prefix DIR")[0]:
            lib = libdir(libprefix)
            for f in ["libtailtrace.so.0", "libtailtrace.a", "libtailtrace-grpc.so.0",
                      "pkgconfig/tailtrace.pc", "cmake/tailtrace/tailtraceConfig.cmake"]:
                check(os.path.exists(os.path.join(lib, f)), "the library-only install has " + f)
            check(os.path.exists(os.path.join(libprefix, "include", "tailtrace.h")),
                  "and the header")
            check(not os.path.exists(os.path.join(libprefix, "bin")), "and no collector")
        shutil.rmtree(libprefix, ignore_errors=True)
    shutil.rmtree(bindir, ignore_errors=True)


def case_subdir():
    bindir = os.path.join(WORK, "subdir-consumer")
    ok = cmake_build(os.path.join(SRC, "tests", "install", "subdir-consumer"), bindir,
                     ["-DTAILTRACE_SOURCE_DIR=" + SRC])
    cache = open(os.path.join(bindir, "CMakeCache.txt")).read() if os.path.exists(
        os.path.join(bindir, "CMakeCache.txt")) else ""
    collector_deps_absent(cache, "tailtrace as a subproject")
    check(re.search(r"^TT_BUILD_COLLECTOR:BOOL=OFF", cache, re.M) is not None,
          "the collector is off when tailtrace is a subproject")
    if not ok:
        return
    check(not os.path.exists(os.path.join(bindir, "tailtrace", "collector")),
          "no collector was built")
    recv = Receiver()
    try:
        export_check(recv, os.path.join(bindir, "app"), "http/protobuf", "sub-shared-http")
        export_check(recv, os.path.join(bindir, "app_static"), "http/protobuf", "sub-static-http")
        export_check(recv, os.path.join(bindir, "app"), "grpc", "sub-shared-grpc")
    finally:
        recv.close()


def case_header():
    src = os.path.join(SRC, "tests", "install", "header_use.c")
    inc = "-I" + os.path.join(SRC, "include")
    compilers = [("gcc", "c"), ("g++", "c++"), ("clang", "c"), ("clang++", "c++")]
    tried = 0
    for comp, lang in compilers:
        if shutil.which(comp) is None:
            print("note  %s is not installed; not tried" % comp)
            continue
        for std in (["c99", "c11"] if lang == "c" else ["c++11", "c++20"]):
            tried += 1
            must([comp, "-x", lang, "-std=" + std, "-Wall", "-Wextra", "-Werror", inc, "-c", src,
                  "-o", os.devnull], "tailtrace.h compiles as %s with %s" % (std, comp))
    check(tried >= 4, "at least one C and one C++ compiler tried each standard")


def case_deb():
    for old in glob.glob(os.path.join(BUILD, "*.deb")):
        os.remove(old)
    ok, _ = must(["make", "--no-print-directory", "-C", SRC, "deb", "BUILD=" + BUILD, "JOBS=2"],
                 "make deb", timeout=280)
    if not ok:
        return
    debs = {os.path.basename(p).split("_")[0]: p for p in glob.glob(os.path.join(BUILD, "*.deb"))}
    check(sorted(debs) == ["libtailtrace-dev", "libtailtrace-grpc0", "libtailtrace0",
                           "tailtrace-collector"], "four packages: %s" % ", ".join(sorted(debs)))
    if len(debs) != 4:
        return

    def field(pkg, name):
        return run(["dpkg-deb", "-f", debs[pkg], name])[1].strip()

    def files(pkg):
        out = run(["dpkg-deb", "-c", debs[pkg]])[1]
        return [line.split()[5].lstrip(".") for line in out.splitlines()]

    dep = {p: field(p, "Depends") for p in debs}
    for p in debs:
        print("      %s: Depends: %s" % (p, dep[p]))
        check(field(p, "Version") == VERSION, "%s has version %s" % (p, VERSION))
    check(re.search(r"libcurl4\b", dep["libtailtrace0"]) and "zlib1g" in dep["libtailtrace0"]
          and "libprotobuf-c1" in dep["libtailtrace0"] and not HEAVY.search(dep["libtailtrace0"]),
          "libtailtrace0 depends on libcurl4, zlib1g and libprotobuf-c1, not on gRPC")
    check("libgrpc" in dep["libtailtrace-grpc0"]
          and "libtailtrace0 (= %s)" % VERSION in dep["libtailtrace-grpc0"],
          "libtailtrace-grpc0 depends on gRPC and this libtailtrace0")
    check("libtailtrace0 (= %s)" % VERSION in dep["libtailtrace-dev"]
          and "libcurl4-openssl-dev" in dep["libtailtrace-dev"],
          "libtailtrace-dev depends on this libtailtrace0 and the static link's -dev packages")
    check(all(d in dep["tailtrace-collector"] for d in ["libgrpc", "libuv1", "libyaml"]),
          "tailtrace-collector depends on its libraries")
    lib0 = files("libtailtrace0")
    check(any(f.endswith("/libtailtrace.so.%s" % VERSION) for f in lib0)
          and not any(f.endswith(".a") or f.endswith(".h") for f in lib0),
          "libtailtrace0 has the shared library only")
    dev = files("libtailtrace-dev")
    for want in ["/include/tailtrace.h", "/libtailtrace.a", "/libtailtrace.so",
                 "/pkgconfig/tailtrace.pc", "/cmake/tailtrace/tailtraceConfig.cmake"]:
        check(any(f.endswith(want) for f in dev), "libtailtrace-dev has %s" % want)
    for p in debs:
        check("/usr/share/doc/%s/copyright" % p in files(p), "%s carries the license" % p)
    col = files("tailtrace-collector")
    check("/usr/bin/tailtrace-collector" in col
          and "/etc/tailtrace/tailtrace-collector.yaml" in col,
          "tailtrace-collector has the binary and /etc/tailtrace/tailtrace-collector.yaml")
    ctl = os.path.join(WORK, "deb-control")
    shutil.rmtree(ctl, ignore_errors=True)
    run(["dpkg-deb", "-e", debs["tailtrace-collector"], ctl])
    check(os.path.exists(os.path.join(ctl, "conffiles")) and "/etc/tailtrace/tailtrace-collector"
          ".yaml" in open(os.path.join(ctl, "conffiles")).read(),
          "the collector's configuration is a conffile")
    # apt's resolver against this machine's package lists, without installing anything.
    must(["apt-get", "install", "-s", "-q"] + [debs[p] for p in sorted(debs)],
         "apt-get install -s accepts the four packages", timeout=120)
    # The packages' files, unpacked into a scratch root, serve a program built with pkg-config.
    root = os.path.join(WORK, "debroot")
    shutil.rmtree(root, ignore_errors=True)
    for p in debs:
        run(["dpkg-deb", "-x", debs[p], root])
    usr = os.path.join(root, "usr")
    exes = build_with_pkg_config(usr, os.path.join(WORK, "deb-app"))
    env = {"LD_LIBRARY_PATH": libdir(usr)}
    recv = Receiver()
    try:
        export_check(recv, exes["shared"], "http/protobuf", "deb-shared-http", env)
        export_check(recv, exes["static"], "http/protobuf", "deb-static-http", env)
        export_check(recv, exes["shared"], "grpc", "deb-shared-grpc", env)
    finally:
        recv.close()
    rc, out = run([os.path.join(usr, "bin", "tailtrace-collector"), "--config",
                   os.path.join(root, "etc/tailtrace/tailtrace-collector.yaml"), "--validate"])
    check(rc == 0, "the packaged collector validates the packaged configuration")


def tsan_suppressions():
    """Under TSan the programs get tests/tsan.supp (ctest's TSAN_OPTIONS) plus
    tests/install/tsan.supp, in one file since TSan reads one."""
    opts = os.environ.get("TSAN_OPTIONS", "")
    m = re.search(r"suppressions=(\S+)", opts)
    if not m or "-fsanitize=thread" not in SAN:
        return
    merged = os.path.join(WORK, "tsan-%d.supp" % os.getpid())
    with open(merged, "w") as out:
        for f in (m.group(1), os.path.join(SRC, "tests", "install", "tsan.supp")):
            with open(f) as inp:
                out.write(inp.read() + "\n")
    os.environ["TSAN_OPTIONS"] = opts.replace(m.group(0), "suppressions=" + merged)


def main():
    cases = {"install": case_install, "pkgconfig": case_pkgconfig, "cmake": case_cmake,
             "subdir": case_subdir, "libonly": case_libonly, "header": case_header, "deb": case_deb}
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        sys.exit("usage: test_install.py %s" % "|".join(cases))
    os.makedirs(WORK, exist_ok=True)
    tsan_suppressions()
    cases[sys.argv[1]]()
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
