"""Where the server's Python threads run: the setting, the choice of a CPU, and the pinning of
real threads (in a child process: pinning this one would pin the test run)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cinema_api.runtime.affinity import MOVE_MARGIN, busy_seconds, check_cpu_affinity, next_cpu, supported
from cinema_api.settings import SettingsError, load_server_settings

linux = pytest.mark.skipif(not supported(), reason="pinning threads needs Linux")


def cpu_setting(value, environ=None):
    return load_server_settings(".", "127.0.0.1", "6543", 10, environ=environ or {}, dotenv={}, cpu_affinity=value).cpu_affinity


def test_the_setting_is_auto_off_or_a_cpu_number():
    assert cpu_setting("auto") == "auto"
    assert cpu_setting(" OFF ") == "off"
    assert cpu_setting("3") == 3
    assert cpu_setting("auto", {"CPU_AFFINITY": "1"}) == 1  # the environment first, as HOST and PORT
    for bad in ("-1", "1.5", "first", "0-1", "\u0661"):  # \u0661: a digit, not an ASCII one
        with pytest.raises(SettingsError, match="CPU_AFFINITY must be auto, off or the number of a CPU"):
            cpu_setting(bad)


def test_a_cpu_the_process_may_not_use_stops_the_server_in_one_line():
    assert check_cpu_affinity("auto") == "auto" and check_cpu_affinity("off") == "off"
    if not supported():
        with pytest.raises(SystemExit, match="CPU_AFFINITY 0 needs Linux"):
            check_cpu_affinity(0)
        return
    assert check_cpu_affinity(2, allowed={0, 2}) == 2
    with pytest.raises(SystemExit, match=r"configuration error: CPU_AFFINITY 1 is not a CPU this process may use \(0, 2\)"):
        check_cpu_affinity(1, allowed={2, 0})


def test_auto_moves_at_the_second_look_that_finds_a_cpu_quieter_by_the_margin():
    crowded = {0: 0.9, 1: 0.1, 2: 0.5}
    assert next_cpu(0, crowded, 0) == (0, 1)  # the first look only counts
    assert next_cpu(0, crowded, 1) == (1, 0)  # the second moves, to the quietest
    assert next_cpu(0, {0: 0.9, 1: 0.9, 2: 0.9}, 1) == (0, 0)  # equals: it stays
    assert next_cpu(0, {0: 0.5, 1: 0.5 - MOVE_MARGIN}, 1) == (0, 0)  # within the margin: it stays, and the count restarts
    assert next_cpu(1, crowded, 1) == (1, 0)  # already the quietest
    looks = 0
    for load in ({0: 0.9, 1: 0.1}, {0: 0.2, 1: 0.1}, {0: 0.9, 1: 0.1}):  # a burst in between
        cpu, looks = next_cpu(0, load, looks)
        assert cpu == 0
    assert looks == 1


@linux
def test_busy_seconds_covers_every_cpu_the_process_may_use():
    before = busy_seconds()
    assert set(os.sched_getaffinity(0)) <= set(before)
    assert all(seconds >= 0 for seconds in before.values())
    assert all(busy_seconds()[cpu] >= before[cpu] for cpu in before)


PINNING = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    from cinema_api.core.threads import ProcessThread, parallel_thread
    from cinema_api.runtime.affinity import InterpreterCpu

    cpu, allowed = int(sys.argv[1]), os.sched_getaffinity(0)
    release = threading.Event()
    ids = {}

    def wait(name):
        ids[name] = threading.get_native_id()
        release.wait(60)

    def mask(name):
        return sorted(os.sched_getaffinity(ids[name]))

    def started(name, target=wait, parallel=False):
        if parallel:
            ProcessThread(name, lambda: target(name), parallel=True).ensure()
        else:
            threading.Thread(target=target, args=(name,), daemon=True).start()
        while name not in ids:
            time.sleep(0.01)

    started("before")
    started("parallel before", parallel=True)
    keeper = InterpreterCpu(cpu, look_sec=0.05)
    assert keeper.start() == cpu
    ids["main"] = threading.get_native_id()
    started("after")
    pool = ThreadPoolExecutor(1, initializer=parallel_thread)  # as the hashing gate's
    pool.submit(wait, "pool")
    while "pool" not in ids:
        time.sleep(0.01)
    masks = {name: mask(name) for name in ids}
    os.sched_setaffinity(ids["after"], allowed)  # strayed: the keeper puts it back
    deadline = time.monotonic() + 10
    while mask("after") != [cpu] and time.monotonic() < deadline:
        time.sleep(0.02)
    masks["after, strayed"] = mask("after")
    release.set()
    pool.shutdown()
    print(json.dumps(masks))
    """
)


@linux
@pytest.mark.slow
def test_threads_that_run_python_share_one_cpu_and_parallel_ones_keep_them_all():
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("one CPU: nothing to pin")
    cpu = allowed[-1]
    result = subprocess.run([sys.executable, "-c", PINNING, str(cpu)], capture_output=True, text=True, timeout=60,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "main": [cpu], "before": [cpu], "after": [cpu], "after, strayed": [cpu],
        "parallel before": allowed, "pool": allowed,
    }
