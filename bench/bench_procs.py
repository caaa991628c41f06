"""Process and port helpers shared by the benchmark scripts (bench_bus.py, bench_load.py): they
start the collector, redis-server and load generators on loopback, and must leave nothing
running whatever happens."""
import json
import signal
import socket
import subprocess
import time

PROCS = []  # every process started through start(), killed by kill_all()


def note(msg):
    print(json.dumps({"note": msg}), flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(step)
    return False


def start(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    PROCS.append(p)
    return p


def forget(p):
    """p ended by other means (communicate): no longer ours to kill."""
    if p in PROCS:
        PROCS.remove(p)


def stop(p, sig=signal.SIGTERM, timeout=15):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    forget(p)


def kill_all():
    for p in list(PROCS):
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    PROCS.clear()
