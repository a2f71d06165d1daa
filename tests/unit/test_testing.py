"""The race helper of cinema_api.testing: the concurrency tests are only as good as it is."""

import threading

import pytest

from cinema_api.testing import at_once


def test_the_calls_start_together_and_their_results_keep_their_order():
    baseline = threading.active_count()
    together = threading.Barrier(6, timeout=5)  # no call ends before all six have looked

    def call(index):
        started = threading.active_count() - baseline  # threads of at_once alive when this call began
        together.wait()
        return index * 10, started

    results = at_once(6, call)
    assert [value for value, _ in results] == [0, 10, 20, 30, 40, 50]
    assert [started for _, started in results] == [6] * 6


def test_a_call_that_raises_raises_in_the_caller():
    def call(index):
        if index == 2:
            raise ValueError("call 2 failed")
        return index

    with pytest.raises(ValueError, match="call 2 failed"):
        at_once(4, call)


def test_a_call_that_never_ends_fails_after_the_timeout():
    never = threading.Event()
    try:
        with pytest.raises(AssertionError, match="1 of 3 concurrent calls still running"):
            at_once(3, lambda index: never.wait(30) if index == 0 else index, timeout=0.3)
    finally:
        never.set()
