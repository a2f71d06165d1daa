"""Background threads of which every process needs its own."""

import os
import threading


class ProcessThread:
    """A daemon thread running ``target()``, started by the first :meth:`ensure` of each process:
    a forked child inherits the parent's objects but none of its threads. ``on_start``, if
    given, runs just before the thread starts (a child's fresh queue, for example: the parent's
    may have been forked with its lock held)."""

    def __init__(self, name, target, on_start=None):
        self.name, self.target, self.on_start = name, target, on_start
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
                threading.Thread(target=self.target, name=self.name, daemon=True).start()
                self.pid = os.getpid()
