"""Worker pools (eval, data build): a worker that fails to start, raises or dies ends the run within seconds
with one clear error, and the results that came back before are kept (issue #33 defect 6, issue #32 point 7)."""

import os
import signal
import time

import pytest

from vidnav.errors import VidNavError
from vidnav.pool import WorkerCrash, run_pool

_STATE = {}


def _init(fail: str | None) -> None:
    if fail == "user":
        raise VidNavError("unknown agent 'nope': use one of oracle, random")
    if fail == "bug":
        raise KeyError("a bug")
    _STATE["ready"] = True


def _square(x: int) -> int:
    if x == -1:  # dies as the OOM killer would kill it
        os.kill(os.getpid(), signal.SIGKILL)
    if x == -2:
        raise VidNavError("episode -2: empty instruction")
    if x < 0:
        time.sleep(60)  # in flight when another worker fails: must not hold the run up
    assert _STATE["ready"]
    return x * x


def test_results_of_every_job_come_back():
    assert sorted(run_pool(_square, range(7), workers=2, initializer=_init, initargs=(None,))) == [
        x * x for x in range(7)
    ]


@pytest.mark.parametrize("fail", ["user", "bug"])
def test_a_worker_that_fails_to_start_ends_the_run_with_its_error(fail):
    t0 = time.monotonic()
    with pytest.raises(
        VidNavError if fail == "user" else WorkerCrash,
        match="unknown agent 'nope'" if fail == "user" else "KeyError: 'a bug'",
    ):
        list(run_pool(_square, range(5), workers=2, initializer=_init, initargs=(fail,)))
    assert time.monotonic() - t0 < 30


def test_a_job_error_ends_the_run_and_stops_jobs_in_flight():
    t0 = time.monotonic()
    with pytest.raises(VidNavError, match="empty instruction"):
        list(run_pool(_square, [-3, -2, 1, 2], workers=2, initializer=_init, initargs=(None,)))
    assert time.monotonic() - t0 < 30


def test_a_killed_worker_ends_the_run_and_keeps_what_finished():
    got = []
    t0 = time.monotonic()
    with pytest.raises(VidNavError, match=r"worker .*died.*SIGKILL"):
        for r in run_pool(_square, [2, 3, -1, -3, 4], workers=2, initializer=_init, initargs=(None,)):
            got.append(r)
    assert time.monotonic() - t0 < 30
    assert {4, 9} <= set(got) <= {4, 9, 16}  # sent before the death: kept


def _slow_exit_init(fail=None) -> None:
    import atexit

    _init(fail)
    atexit.register(time.sleep, 7)  # a worker whose teardown is slow (EGL, a loaded machine) after its last job


def _sleepy_square(x: int) -> int:
    time.sleep(x)
    return x * x


def test_a_worker_that_ends_cleanly_but_slowly_is_not_taken_for_dead():
    """One worker runs out of jobs while the other still works: its pipe closes before its process has exited.
    That is not a death (it said so), and the run goes on to the last result."""
    out = sorted(run_pool(_sleepy_square, [9, 0], workers=2, initializer=_slow_exit_init, initargs=(None,)))
    assert out == [0, 81]
