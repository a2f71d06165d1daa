"""A background thread per process: started once, and again in a forked child."""

import os
import threading
import warnings

from cinema_api.core.threads import ProcessThread


def test_a_process_thread_starts_once_per_process_and_again_in_a_forked_child():
    starts, ran = [], threading.Event()
    thread = ProcessThread("probe", ran.set, on_start=lambda: starts.append(os.getpid()))
    for _ in range(3):
        thread.ensure()
    assert ran.wait(5) and starts == [os.getpid()]
    thread.ensure()
    assert starts == [os.getpid()]  # no second thread here
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running: this test's point
        child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        ran.clear()
        thread.ensure()
        ok = ran.wait(5) and starts == [os.getppid(), os.getpid()]
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(child, 0)
