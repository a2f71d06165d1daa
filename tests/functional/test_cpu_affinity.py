"""A served process's threads: the ones that run Python on one CPU, bcrypt's and the SQLite
checkpoint's on every CPU; ``off`` leaves them to the kernel; ``auto`` leaves a CPU that other
work crowds. Real ``pserve`` processes, read from ``/proc``."""

import os
import subprocess
import sys
import time

import pytest

from cinema_api.runtime.affinity import supported
from cinema_api.testing import ServerProcess
from tests.functional.test_server import assert_stops_with, run_pserve

ALLOWED = sorted(os.sched_getaffinity(0)) if supported() else []
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(len(ALLOWED) < 2, reason="pinning threads needs Linux and two CPUs"),
]


def masks(pid):
    """``[CPUs a thread may run on]`` for each thread of process ``pid``."""
    found = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            found.append(sorted(os.sched_getaffinity(int(tid))))
        except OSError:  # ended meanwhile
            continue
    return found


def register(server, name):
    status, _, _ = server.request("POST", "/v1/auth/register", {"username": name, "password": "secret123", "age": 30})
    assert status == 201


def test_a_cpu_number_pins_the_python_threads_and_leaves_bcrypt_and_checkpoints_every_cpu(tmp_path):
    cpu = ALLOWED[-1]
    with ServerProcess(DATABASE_URL="sqlite:///%s/pinned.sqlite" % tmp_path, migrate=True, CPU_AFFINITY=str(cpu)) as server:
        before = masks(server.process.pid)
        register(server, "pinned")  # a hash: the first bcrypt thread starts
        after = masks(server.process.pid)
        log = server.stop()
    # the I/O loop, the request threads, the log writer, the keeper...; the checkpoint thread keeps all
    assert before.count([cpu]) >= 8 and before.count(ALLOWED) == 1, before
    assert after.count(ALLOWED) == 2 and after.count([cpu]) == before.count([cpu]), after
    assert "the server's Python threads run on CPU %d (CPU_AFFINITY %d)" % (cpu, cpu) in log


def test_off_leaves_every_thread_to_the_kernel(tmp_path):
    with ServerProcess(DATABASE_URL="sqlite:///%s/off.sqlite" % tmp_path, migrate=True, CPU_AFFINITY="off") as server:
        register(server, "unpinned")
        found = masks(server.process.pid)
        log = server.stop()
    assert found and all(cpus == ALLOWED for cpus in found), found
    assert "Python threads run on CPU" not in log


def test_a_cpu_the_process_may_not_use_stops_pserve_in_one_line(tmp_path):
    missing = max(ALLOWED) + 1
    assert_stops_with(run_pserve(tmp_path, CPU_AFFINITY=str(missing)),
                      "cinema_api: configuration error: CPU_AFFINITY %d is not a CPU this process may use (%s)"
                      % (missing, ", ".join(map(str, ALLOWED))))
    assert_stops_with(run_pserve(tmp_path, CPU_AFFINITY="first"),
                      "cinema_api: configuration error: CPU_AFFINITY must be auto, off or the number of a CPU")


SPIN = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\nwhile time.monotonic() < end: pass\n"


def test_auto_leaves_a_cpu_that_other_work_keeps_busy(tmp_path):
    with ServerProcess(DATABASE_URL="sqlite:///%s/auto.sqlite" % tmp_path, migrate=True, CPU_AFFINITY="auto") as server:
        pid = server.process.pid
        start = os.sched_getaffinity(pid)  # the main thread's: the I/O loop
        assert len(start) == 1
        crowded = next(iter(start))
        # a neighbour that takes the server's CPU whole, for at most 20 s
        neighbour = subprocess.Popen([sys.executable, "-c", SPIN, "20"])
        try:
            os.sched_setaffinity(neighbour.pid, {crowded})
            deadline = time.monotonic() + 15
            while os.sched_getaffinity(pid) == start and time.monotonic() < deadline:
                time.sleep(0.1)
            moved = os.sched_getaffinity(pid)
            found = masks(pid)
        finally:
            neighbour.kill()
            neighbour.wait()
        log = server.stop()
    assert len(moved) == 1 and moved != start, log
    assert found.count(sorted(moved)) >= 8, found  # all of them, not the main thread alone
    assert "the server's Python threads move from CPU %d to CPU %d" % (crowded, next(iter(moved))) in log
