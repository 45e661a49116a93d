"""A process pool that never hangs: the eval and data-build workers run here.

    for result in run_pool(fn, jobs, workers=2, initializer=init, initargs=(...,)):
        ...                                   # results in completion order, as they finish

``multiprocessing.Pool`` waits forever when a worker dies (the OOM killer, ``kill -9``) and starts new workers
without end when its initializer raises (an unknown agent, a corrupt checkpoint). Here any worker error or
death ends the run within about a second: the other workers are stopped, every result that came back before is
yielded first (so callers that record results as they arrive keep them), and the error is raised: a
:class:`VidNavError` raised in a worker as the same one-line ``VidNavError``, any other exception as
:class:`WorkerCrash` carrying the worker's traceback, a death as a ``VidNavError`` naming the worker, its exit
signal and the likely cause.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator

from vidnav.errors import VidNavError


class WorkerCrash(RuntimeError):
    """A worker raised something other than a VidNavError (a bug); the message holds its traceback."""


def _serve(fn, initializer, initargs, tasks, conn) -> None:
    """A worker: run the initializer, then jobs from ``tasks`` until the None sentinel; send each result (or the
    first error) through ``conn``; a send is synchronous, so a result sent is not lost if the worker dies next."""
    try:
        if initializer is not None:
            initializer(*initargs)
        while (item := tasks.get()) is not None:
            conn.send(("ok", fn(item)))
        conn.send(("done", None))  # a clean end: the parent tells it from a death by this, not by the exit code
    except KeyboardInterrupt:
        return
    except VidNavError as e:
        conn.send(("user", str(e)))
    except BaseException:
        conn.send(("crash", traceback.format_exc()))
    finally:
        conn.close()


def _death(code: int | None) -> str:
    if code is None:  # still ending (a slow teardown under load): it closed its pipe without a word
        return "died: its pipe closed without a result or an error"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"died: killed by {name}{why}"
    return f"died: exited with code {code}"


def run_pool(
    fn: Callable[[Any], Any],
    jobs: Iterable,
    workers: int,
    initializer: Callable | None = None,
    initargs: tuple = (),
    what: str = "worker",
) -> Iterator[Any]:
    """Run ``fn(job)`` for every job in ``workers`` fresh (spawned) processes; yield results as they finish.

    ``fn``, ``initializer`` and the jobs must be picklable (module-level functions). Raises as the module
    docstring says; the workers are stopped whenever the generator ends (error, break, Ctrl-C)."""
    jobs = list(jobs)
    ctx = mp.get_context("spawn")  # fresh processes: each opens its own EGL context, no forked threads
    tasks = ctx.Queue()
    for job in jobs:
        tasks.put(job)
    for _ in range(workers):
        tasks.put(None)
    procs, conns = [], {}
    try:
        for _ in range(workers):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_serve, args=(fn, initializer, initargs, tasks, send), daemon=True)
            p.start()
            send.close()  # the worker holds the only send end: its death makes recv readable (EOF)
            procs.append(p)
            conns[recv] = p
        pending = len(jobs)
        while pending:
            ready = wait(list(conns), timeout=1.0)
            error = None
            for conn in ready:
                p = conns[conn]
                try:
                    kind, payload = conn.recv()
                except EOFError:  # the pipe closed before "done": the worker died
                    del conns[conn]
                    conn.close()
                    p.join(5)
                    if error is None:
                        error = VidNavError(
                            f"{what} process {p.pid} {_death(p.exitcode)} with jobs "
                            "unfinished; results that came back are kept: rerun to resume "
                            "(with fewer --workers if memory ran out)"
                        )
                    continue
                if kind == "done":  # it ran out of jobs and ends; its pipe's EOF is not a death
                    del conns[conn]
                    conn.close()
                elif kind == "ok":
                    pending -= 1
                    yield payload
                elif error is None:
                    error = (
                        VidNavError(payload)
                        if kind == "user"
                        else WorkerCrash(f"{what} process {p.pid} failed:\n{payload}")
                    )
            if error is not None:
                for conn in conns:  # results other workers sent meanwhile are kept too
                    try:
                        while conn.poll(0.2):
                            kind, payload = conn.recv()
                            if kind == "ok":
                                pending -= 1
                                yield payload
                    except EOFError:
                        pass
                raise error
            if not conns and pending:  # every worker ended cleanly, yet jobs are left
                raise WorkerCrash(f"all {what} processes ended with {pending} job(s) unfinished")
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        for conn in conns:
            conn.close()
        tasks.close()
        tasks.cancel_join_thread()
