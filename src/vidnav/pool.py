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

Model workers on accelerators: :func:`check_device` refuses a ``--device`` / ``--dtype`` that cannot work
before any model loads, and :func:`worker_device` says which device worker ``i`` of ``n`` uses (``cuda`` with
several workers: one GPU each, ``cuda:i``); ``run_pool(worker_initargs=...)`` gives each worker its own.
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
    worker_initargs: list[tuple] | None = None,
) -> Iterator[Any]:
    """Run ``fn(job)`` for every job in ``workers`` fresh (spawned) processes; yield results as they finish.

    ``fn``, ``initializer`` and the jobs must be picklable (module-level functions). ``worker_initargs``: one
    tuple of initializer arguments per worker (e.g. its own GPU), instead of ``initargs`` for all. Raises as the
    module docstring says; the workers are stopped whenever the generator ends (error, break, Ctrl-C)."""
    if worker_initargs is not None and len(worker_initargs) != workers:
        raise ValueError(f"worker_initargs holds {len(worker_initargs)} tuples for {workers} workers")
    jobs = list(jobs)
    ctx = mp.get_context("spawn")  # fresh processes: each opens its own EGL context, no forked threads
    tasks = ctx.Queue()
    for job in jobs:
        tasks.put(job)
    for _ in range(workers):
        tasks.put(None)
    procs, conns = [], {}
    try:
        for i in range(workers):
            recv, send = ctx.Pipe(duplex=False)
            args = initargs if worker_initargs is None else worker_initargs[i]
            p = ctx.Process(target=_serve, args=(fn, initializer, args, tasks, send), daemon=True)
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


DTYPES = ("float32", "bfloat16", "float16")
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device: str | None, dtype: str | None, workers: int = 1) -> None:
    """One-line errors naming the option for a ``--device`` / ``--dtype`` that cannot work here, raised before
    any model loads: an unknown dtype or device, CUDA (or MPS) asked for on a machine without it, a GPU index
    this machine lacks, ``--device cuda`` with more ``--workers`` than GPUs (one worker per GPU)."""
    if dtype is not None and dtype not in DTYPES:
        raise VidNavError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise VidNavError(f"--device must be cpu, cuda, cuda:N or mps, got {device!r}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise VidNavError(f"--device {device}: this machine has no MPS device; use --device cpu")
    if dev.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise VidNavError(f"--device {device}: this machine has no CUDA device (torch.cuda.is_available() is False)")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise VidNavError(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 .. cuda:{count - 1}")
    if dev.index is None and workers > count:
        raise VidNavError(
            f"--workers {workers} with --device cuda runs one worker per GPU, and this machine has {count} "
            "(torch.cuda.device_count()); use --workers <= that, or --device cuda:N to share one GPU"
        )


def worker_device(device: str | None, index: int, workers: int) -> str | None:
    """The device worker ``index`` of ``workers`` runs its model on: with ``cuda`` (no index) and several
    workers, ``cuda:<index>``, one GPU per worker; any other device (``cpu``, ``mps``, ``cuda:N``, None) is
    shared by all of them."""
    if not 0 <= index < workers:
        raise ValueError(f"worker index {index} out of range for {workers} workers")
    if device == "cuda" and workers > 1:
        return f"cuda:{index}"
    return device
