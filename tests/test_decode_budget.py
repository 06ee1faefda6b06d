"""DecodeBudget (faceverify/images.py) on its own: which reservations run together, which wait, and
that a reservation is given back however its block ends.

Each reservation is held by a thread until the test lets it go, so what runs at once is decided by
the test, not by timing. A reservation that must wait is checked with a short bounded wait
(WAITING_S): one wrongly let in enters at once. Every other wait is bounded by TIMEOUT_S.
"""

from __future__ import annotations

import threading

import pytest

from faceverify.images import DecodeBudget

TIMEOUT_S = 10.0
"""Longest wait for something that must happen (a thread entering or ending)."""
WAITING_S = 0.3
"""How long a reservation that must wait is watched not entering."""


class Holder:
    """A thread that reserves `amount` from `budget`, holds it until `finish()`, and then leaves its
    block normally or, with `fail`, by raising."""

    def __init__(self, budget: DecodeBudget, amount: int, fail: bool = False) -> None:
        self.budget, self.amount, self.fail = budget, amount, fail
        self.entered = threading.Event()
        self.raised: BaseException | None = None
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)  # daemon: a stuck one cannot hang the run
        self._thread.start()

    def _run(self) -> None:
        try:
            with self.budget.reserve(self.amount):
                self.entered.set()
                self._release.wait(TIMEOUT_S)
                if self.fail:
                    raise RuntimeError("the decode failed")
        except RuntimeError as error:
            self.raised = error

    def entered_soon(self) -> bool:
        return self.entered.wait(TIMEOUT_S)

    def still_waiting(self) -> bool:
        return not self.entered.wait(WAITING_S)

    def finish(self) -> None:
        self._release.set()
        self._thread.join(TIMEOUT_S)
        assert not self._thread.is_alive(), f"the reservation of {self.amount} did not end"


def test_reservations_that_fit_together_run_together():
    budget = DecodeBudget(100)
    first = Holder(budget, 60)
    assert first.entered_soon()
    second = Holder(budget, 40)  # 60 + 40 = the whole pool: fits
    try:
        assert second.entered_soon(), "a reservation that fits waited"
        assert budget.reserved == 100
    finally:
        first.finish(), second.finish()
    assert budget.reserved == 0


def test_a_reservation_that_does_not_fit_waits_for_a_release():
    budget = DecodeBudget(100)
    first = Holder(budget, 60)
    assert first.entered_soon()
    second = Holder(budget, 50)  # 60 + 50 > 100
    try:
        assert second.still_waiting(), "a reservation over what is left did not wait"
        assert budget.reserved == 60
        first.finish()
        assert second.entered_soon(), "it was not let in when the first was released"
        assert budget.reserved == 50
    finally:
        first.finish(), second.finish()
    assert budget.reserved == 0


def test_a_reservation_larger_than_the_pool_runs_alone():
    budget = DecodeBudget(100)
    small = Holder(budget, 30)
    assert small.entered_soon()
    large = Holder(budget, 250)  # more than the whole pool: it waits until nothing else runs
    later = None
    try:
        assert large.still_waiting(), "it ran beside another reservation"
        small.finish()
        assert large.entered_soon(), "it never ran, though the pool was empty"
        assert budget.reserved == budget.capacity == 100
        later = Holder(budget, 1)  # while it runs, even the smallest reservation waits
        assert later.still_waiting(), "another reservation ran beside it"
        large.finish()
        assert later.entered_soon()
    finally:
        for holder in (small, large, later):
            if holder is not None:
                holder.finish()
    assert budget.reserved == 0


def test_a_reservation_is_released_when_its_block_raises():
    budget = DecodeBudget(100)
    failing = Holder(budget, 80, fail=True)
    assert failing.entered_soon()
    waiting = Holder(budget, 50)
    try:
        assert waiting.still_waiting()
        failing.finish()
        assert isinstance(failing.raised, RuntimeError), "the error reached the caller"
        assert waiting.entered_soon(), "the failed block's reservation was never given back"
    finally:
        failing.finish(), waiting.finish()
    assert budget.reserved == 0
    with pytest.raises(ValueError):
        with budget.reserve(100):
            raise ValueError("any error")
    assert budget.reserved == 0
