"""The server's Python threads on one CPU (``cpu_affinity`` of ``[server:main]``, ``CPU_AFFINITY``).

Python code runs on one thread at a time (the interpreter lock). Left to the kernel, the
server's threads (the I/O loop, the request threads, the log writer) are spread over the
machine's CPUs, and every hand-over of the lock moves the work to another CPU: the waiting
thread is woken there (a futex wake and a context switch, each time), and what every thread
touches (the lock, the reference counts of shared objects) travels between the CPUs' caches.
A request that calls SQLite or PostgreSQL gives the lock up and takes it back several times.
On the 2-CPU machine of bench/NOTES.md ("One CPU for the server's Python threads"), served the
kernel's way, an SQLite purchase cost 1,223 us of CPU and 15.6 context switches; with the threads
on one CPU, 825 us and 4.0, and the server sold 30 % more a second and answered 49 to 78 % more
cached reads.

So the server pins its Python threads to one CPU and leaves every CPU to the threads whose work
runs outside the lock (``cinema_api.core.threads.parallel_thread``: bcrypt's hashes, SQLite's
checkpoints) and to other processes (PostgreSQL, a proxy). Threads started later inherit the
CPU of the thread that starts them; a thread of the process looks at them every second or so
and puts any that strayed back.

``cpu_affinity``:

- ``auto`` (the default): the quietest of the CPUs the process may use, when it starts. From
  then on, when other work keeps that CPU busier than the quietest one by ``MOVE_MARGIN`` of a
  CPU at two looks in a row, the threads move there. Several servers on one machine (the
  systemd template's instances, the Procfile's processes) so end on CPUs of their own, and one
  that shares its CPU with a busy neighbour moves away. A process allowed one CPU has nothing to
  choose: its threads are left alone.
- a CPU number (as ``taskset`` and ``os.sched_getaffinity`` count them): that CPU, for good.
- ``off``: the kernel places the threads.

Linux only (``os.sched_setaffinity``, ``/proc``): elsewhere ``auto`` does nothing and a CPU
number is refused.
"""

import logging
import os
import random
import threading
import time

from cinema_api.core.threads import keep_process_cpus, parallel_thread_ids, thread_ids

log = logging.getLogger(__name__)

#: How often the threads are looked at (give or take a quarter, so that servers started
#: together do not look, and move, at the same moments).
LOOK_SEC = 1.0
#: How much busier (in CPUs) than the quietest CPU other work must keep the chosen one, at two
#: looks in a row, before ``auto`` moves the threads.
MOVE_MARGIN = 0.25
#: How long ``auto`` watches the CPUs at start to find the quietest.
START_SAMPLE_SEC = 0.05


def supported():
    return hasattr(os, "sched_setaffinity") and os.path.exists("/proc/stat")


def check_cpu_affinity(setting, allowed=None):
    """``setting`` (``auto``, ``off`` or a CPU number, as ``load_server_settings`` read it), or
    ``SystemExit`` with one configuration line for a CPU the process may not use or a system
    that cannot pin threads."""
    if setting in ("auto", "off"):
        return setting
    if not supported():
        raise SystemExit("cinema_api: configuration error: CPU_AFFINITY %d needs Linux (use auto or off)" % setting)
    allowed = os.sched_getaffinity(0) if allowed is None else allowed
    if setting not in allowed:
        raise SystemExit("cinema_api: configuration error: CPU_AFFINITY %d is not a CPU this process may use (%s)"
                         % (setting, ", ".join(map(str, sorted(allowed)))))
    return setting


def busy_seconds():
    """``{cpu: seconds busy since boot}`` of every CPU of the machine (``/proc/stat``)."""
    tick = os.sysconf("SC_CLK_TCK")
    busy = {}
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *fields = line.split()
                user, nice, system, _idle, _iowait, irq, softirq, steal = (list(map(int, fields)) + [0] * 8)[:8]
                busy[int(name[3:])] = (user + nice + system + irq + softirq + steal) / tick
    return busy


def thread_seconds(tids):
    """The CPU seconds (user and system) the threads ``tids`` have used; those that ended count none."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for tid in tids:
        try:
            with open("/proc/self/task/%d/stat" % tid) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def next_cpu(current, others_load, looks_over, margin=MOVE_MARGIN):
    """``(cpu, looks_over)``: where the threads go after this look, and how many looks in a row
    have now found a CPU quieter than ``current`` by ``margin``. ``others_load``: ``{cpu: CPUs
    busy with work other than these threads}`` since the previous look. They move at the second
    such look, to the quietest CPU."""
    quietest = min(others_load, key=lambda cpu: (others_load[cpu], cpu != current))
    if quietest == current or others_load[current] - others_load[quietest] <= margin:
        return current, 0
    if looks_over + 1 < 2:
        return current, looks_over + 1
    return quietest, 0


class InterpreterCpu:
    """The CPU of the process's Python threads (:meth:`start`), kept by a thread of its own."""

    def __init__(self, setting, allowed=None, look_sec=LOOK_SEC):
        self.setting = setting
        self.allowed = frozenset(os.sched_getaffinity(0) if allowed is None else allowed)
        self.look_sec = look_sec
        self.cpu = None
        self.looks_over = 0
        self.last = None  # (monotonic time, busy_seconds(), the pinned threads' CPU seconds) of the last look

    def start(self):
        """Pin the Python threads and start the thread that keeps them there; the CPU, or None
        when there is nothing to pin (``off``, one CPU allowed). Linux only: the server runner
        makes none elsewhere."""
        if self.setting == "off" or len(self.allowed) < 2:
            return None
        cpu = self.setting if isinstance(self.setting, int) else self.quietest_now()
        keep_process_cpus(self.allowed)
        self.cpu = cpu
        self.apply()
        log.info("the server's Python threads run on CPU %d (CPU_AFFINITY %s), bcrypt and SQLite checkpoints on "
                 "any of %d", cpu, self.setting, len(self.allowed))
        threading.Thread(target=self.run, name="cpu-affinity", daemon=True).start()
        return cpu

    def quietest_now(self):
        """The allowed CPU least busy over ``START_SAMPLE_SEC``; among equals, one picked by the
        process id, so that servers started together on an idle machine spread."""
        before = busy_seconds()
        time.sleep(START_SAMPLE_SEC)
        after = busy_seconds()
        ordered = sorted(self.allowed)
        spread = {cpu: (index - os.getpid()) % len(ordered) for index, cpu in enumerate(ordered)}
        return min(ordered, key=lambda cpu: (round(after.get(cpu, 0) - before.get(cpu, 0), 2), spread[cpu]))

    def apply(self):
        """Every thread on its CPUs: the pinned one, or all for the threads of
        ``parallel_thread``. The pinned threads' ids."""
        parallel, pinned = parallel_thread_ids(), []
        for tid in thread_ids():
            wanted = self.allowed if tid in parallel else frozenset((self.cpu,))
            try:
                if os.sched_getaffinity(tid) != wanted:
                    os.sched_setaffinity(tid, wanted)
            except OSError:  # ended meanwhile
                continue
            if tid not in parallel:
                pinned.append(tid)
        return pinned

    def run(self):
        try:
            while True:
                time.sleep(self.look_sec * random.uniform(0.75, 1.25))
                self.look()
        except Exception:  # the threads stay where they are
            log.exception("the CPU of the server's Python threads is no longer kept")

    def look(self):
        """Put strayed threads back; with ``auto``, move them all where other work leaves more room."""
        pinned = self.apply()
        if self.setting != "auto":
            return
        now, busy, ours = time.monotonic(), busy_seconds(), thread_seconds(pinned)
        last, self.last = self.last, (now, busy, ours)
        if last is None or now <= last[0]:
            return
        elapsed = now - last[0]
        others = {cpu: (busy[cpu] - last[1].get(cpu, busy[cpu])) / elapsed for cpu in self.allowed if cpu in busy}
        if self.cpu not in others:
            return
        others[self.cpu] = max(0.0, others[self.cpu] - (ours - last[2]) / elapsed)
        cpu, self.looks_over = next_cpu(self.cpu, others, self.looks_over)
        if cpu != self.cpu:
            log.info("the server's Python threads move from CPU %d to CPU %d: other work kept it %.0f %% busy, "
                     "CPU %d %.0f %%", self.cpu, cpu, 100 * others[self.cpu], cpu, 100 * others[cpu])
            self.cpu = cpu
            self.apply()
            self.last = None  # the next look measures from the move
