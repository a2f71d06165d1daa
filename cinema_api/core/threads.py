"""Background threads of which every process needs its own, and the threads that keep every CPU
when the server pins the interpreter's threads to one (``cinema_api.runtime.affinity``)."""

import os
import threading

_lock = threading.Lock()
_parallel = set()  # native ids of the threads of parallel_thread()
_process_cpus = None  # every CPU the process may use, once the interpreter's threads are pinned


def parallel_thread():
    """Mark the calling thread as one whose work runs mostly outside the interpreter lock (C
    code that releases it: a bcrypt hash, an SQLite checkpoint): it keeps every CPU the process
    may use, wherever the server pins the threads that run Python. Call it first thing in the
    thread (a pool's ``initializer``, :class:`ProcessThread`'s ``parallel``)."""
    with _lock:
        _parallel.add(threading.get_native_id())
        cpus = _process_cpus
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def parallel_thread_ids():
    """The native ids of the threads of :func:`parallel_thread` (ended ones included)."""
    with _lock:
        return frozenset(_parallel)


def keep_process_cpus(cpus):
    """Set by the server when it pins the interpreter's threads: the CPUs that the threads of
    :func:`parallel_thread` keep (those started before, and those to come). Ids of threads that
    have ended are forgotten, so a thread that gets one again is not taken for one of them."""
    global _process_cpus
    live = set(thread_ids())
    with _lock:
        _process_cpus = frozenset(cpus)
        _parallel.intersection_update(live)


def thread_ids():
    """The native ids of every thread of this process, Python's or not (Linux: ``/proc``)."""
    return [int(tid) for tid in os.listdir("/proc/self/task")]


class ProcessThread:
    """A daemon thread running ``target()``, started by the first :meth:`ensure` of each process:
    a forked child inherits the parent's objects but none of its threads. ``on_start``, if
    given, runs just before the thread starts (a child's fresh queue, for example: the parent's
    may have been forked with its lock held). ``parallel``: the thread's work runs mostly outside
    the interpreter lock (:func:`parallel_thread`)."""

    def __init__(self, name, target, on_start=None, parallel=False):
        self.name, self.target, self.on_start, self.parallel = name, target, on_start, parallel
        self.pid = None
        self.lock = threading.Lock()

    def ensure(self):
        """Start the thread unless this process already has it."""
        if self.pid == os.getpid():
            return
        with self.lock:
            if self.pid != os.getpid():
                if self.on_start is not None:
                    self.on_start()
                threading.Thread(target=self._run, name=self.name, daemon=True).start()
                self.pid = os.getpid()

    def _run(self):
        if self.parallel:
            parallel_thread()
        self.target()
