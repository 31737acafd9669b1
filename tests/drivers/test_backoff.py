"""drivers.backoff.Backoff: the reconnect-loop rule and the supervisor-restart rule."""

from __future__ import annotations

import random

import pytest

from drivers.backoff import Backoff


def test_failed_doubles_from_min_and_caps_at_max() -> None:
    b = Backoff(0.5, 3.0)
    assert b.delay == 0.0
    assert [b.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert b.delay == 3.0


def test_reset_starts_again_from_min() -> None:
    b = Backoff(0.2, 5.0)
    b.failed()
    b.failed()
    b.failed()
    assert b.next_delay == 1.6
    b.reset()
    assert b.delay == 0.0 and b.next_delay == 0.2
    assert [b.failed(), b.failed()] == [0.2, 0.4]


def test_max_below_min_is_raised_to_min() -> None:
    b = Backoff(2.0, 1.0)
    assert b.max_s == 2.0
    assert [b.failed(), b.failed()] == [2.0, 2.0]


def test_jitter_takes_at_most_its_fraction_off_and_keeps_the_doubling() -> None:
    random.seed(1)
    b = Backoff(1.0, 64.0, jitter=0.5)
    waits = []
    for k in range(7):
        wait = b.failed()
        waits.append(wait)
        nominal = min(2.0**k, 64.0)
        assert b.delay == nominal  # the doubling ignores the jitter
        assert nominal * 0.5 <= wait <= nominal
    assert len(set(waits)) == len(waits)  # really random, not a fixed fraction
    assert min(w / min(2.0**k, 64.0) for k, w in enumerate(waits)) < 0.9


def test_jitter_must_be_a_fraction() -> None:
    with pytest.raises(ValueError):
        Backoff(1.0, 2.0, jitter=1.5)
    with pytest.raises(ValueError):
        Backoff(1.0, 2.0, jitter=-0.1)


def test_schedule_once_per_failure_then_due_then_restarted() -> None:
    b = Backoff(1.0, 30.0)
    assert not b.due(100.0)
    assert b.schedule(100.0) == 1.0
    assert b.next_at == 101.0
    assert b.schedule(100.5) == 1.0  # the same failure seen again: not rescheduled, not doubled
    assert b.next_at == 101.0
    assert not b.due(100.99)
    assert b.due(101.0)
    b.restarted(101.0)
    assert (b.next_at, b.up_since, b.restarts) == (None, 101.0, 1)
    assert not b.due(200.0)


def test_schedule_doubles_in_a_crash_loop_up_to_max() -> None:
    b = Backoff(1.0, 8.0)
    now = 0.0
    waits = []
    for _ in range(6):
        wait = b.schedule(now)
        waits.append(wait)
        now += wait
        assert b.due(now)
        b.restarted(now)
        now += 0.5  # dies again soon after each restart
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert b.restarts == 6


def test_schedule_starts_from_min_after_staying_up_max_s() -> None:
    b = Backoff(1.0, 8.0)
    b.schedule(0.0)
    b.restarted(1.0)
    b.schedule(2.0)  # 2 s
    b.restarted(4.0)
    assert b.schedule(4.0 + 7.9) == 4.0  # up 7.9 s < max_s: still a crash loop
    b.restarted(20.0)
    assert b.schedule(20.0 + 8.0) == 1.0  # up exactly max_s: a new failure
    assert b.next_at == 29.0


def test_schedule_without_a_restart_yet_keeps_doubling() -> None:
    b = Backoff(1.0, 8.0)
    assert b.schedule(0.0) == 1.0
    b.next_at = None  # (a part that never came up: up_since stays None)
    assert b.schedule(1000.0) == 2.0


def test_schedule_with_jitter_waits_the_jittered_time() -> None:
    random.seed(2)
    b = Backoff(4.0, 16.0, jitter=0.25)
    wait = b.schedule(10.0)
    assert 3.0 <= wait <= 4.0
    assert b.next_at == 10.0 + wait
    assert b.schedule(11.0) == wait
