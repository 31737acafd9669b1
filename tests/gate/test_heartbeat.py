"""Heartbeat: a promise to check in by a deadline; broken promises mark a hung thread."""

from __future__ import annotations

from support.wait import wait_until

from drivers.heartbeat import Heartbeat


def test_fresh_until_the_promise_runs_out() -> None:
    hb = Heartbeat()
    assert not hb.fresh and hb.overdue_s is None  # never beaten: not fresh
    hb.beat(2.0)
    assert hb.fresh
    overdue = hb.overdue_s
    assert overdue is not None and overdue < 0
    wait_until(lambda: not hb.fresh, 30, "the promise to run out")  # at least 2 s later, on its own clock
    overdue = hb.overdue_s
    assert overdue is not None and overdue > 0
    hb.beat(5.0)  # a planned long wait (reconnect backoff) is not a hang
    assert hb.fresh
