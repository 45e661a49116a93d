"""Load on `vidnav serve` (the shipped agent) over loopback, against the same steps in-process.

    python bench/serve_load.py                       # 8 clients x 100 steps, 2,000 session requests for RSS
    python bench/serve_load.py --clients 4 --steps 30 --rss-requests 500    # a shorter run

1. Starts `vidnav serve` in a subprocess on a free loopback port (its own process, so its RSS is its own).
2. Load: --clients RemoteAgents in as many threads, each one episode of --steps `act` calls (one real camera
   frame each, PNG over HTTP): all must succeed; throughput (steps/s) and per-step latency p50/p95.
3. The same steps in-process: as many Agents on one shared model in as many threads (the server's setting), and
   one client alone over HTTP vs one Agent alone: what the HTTP layer costs per step. The threaded in-process
   plans are checked equal to the same agents run one after another (torch on one shared model from several
   threads is safe here).
4. Memory: the server's RSS after a warm-up, after --rss-requests requests (sessions created, 3 frames each,
   deleted) and after as many again: it must not grow with the sessions that came and went.
5. Batching across sessions: the vision tower on 8 frames in one call vs 8 calls, against a whole act() step:
   the most that batching the tower across sessions could save per step.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # run from a checkout without installing
sys.path.insert(0, str(REPO / "bench"))

INSTRUCTIONS = [
    "walk past the sofa, turn left at the door and stop by the bed",
    "go straight down the hallway and stop in the kitchen next to the table",
    "turn around, leave the bedroom and wait at the top of the stairs",
    "walk through the living room and stop in front of the bookshelf",
]


def frames(n: int) -> np.ndarray:
    try:
        from agent_step import real_frames

        return real_frames(n)
    except Exception as e:  # no video decoder: seeded random frames (larger PNGs, same model cost)
        print(f"(real frames unavailable: {e}; using random frames)")
        return np.random.default_rng(0).integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, threads: int | None, max_sessions: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vidnav.cli", "serve", "--port", str(port), "--max-sessions", str(max_sessions)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("VIDNAV_TOKEN", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    from vidnav.serve import RemoteAgent

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vidnav serve exited: {proc.stderr.read()[-2000:]}")
        try:
            RemoteAgent(f"http://127.0.0.1:{port}", timeout=2).health()
            return proc
        except Exception:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("vidnav serve did not start within 300 s")


def rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def run_threads(n: int, fn) -> tuple[float, list]:
    out: list = [None] * n
    errors: list = []

    def one(k):
        try:
            out[k] = fn(k)
        except Exception as e:  # counted and reported: the load must succeed whole
            errors.append(e)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} of {n} clients failed, first: {errors[0]!r}")
    return time.perf_counter() - t0, out


def episode(agent, k: int, clip: np.ndarray) -> tuple[list[float], list[list[str]]]:
    """One client's episode: reset, then one act per frame; per-step seconds and the plans."""
    agent.reset(INSTRUCTIONS[k % len(INSTRUCTIONS)])
    times, plans = [], []
    for f in clip:
        t0 = time.perf_counter()
        plans.append(agent.act(f))
        times.append(time.perf_counter() - t0)
    return times, plans


def report(label: str, wall: float, per_client: list, steps: int) -> dict:
    lat = [t for times, _ in per_client for t in times]
    row = {
        "label": label,
        "steps": len(lat),
        "wall_s": wall,
        "steps_per_s": len(lat) / wall,
        "p50_ms": pct(lat, 50) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "mean_ms": float(np.mean(lat)) * 1000,
    }
    print(
        f"  {label:44s} {row['steps']:5d} steps {wall:7.1f} s  {row['steps_per_s']:6.2f} steps/s  "
        f"p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100, help="act calls per client")
    ap.add_argument("--rss-requests", type=int, default=2000, help="requests per memory round (5 per session)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, server and in-process (0: torch's)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    import torch

    from vidnav.serve import RemoteAgent
    from vidnav.serve.app import shared_model_agents

    if args.threads:
        torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the server (finally below)
    clips = frames(args.clients * args.steps).reshape(args.clients, args.steps, 224, 224, 3)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {args.clients} clients x "
        f"{args.steps} steps (one act per step, a 224x224 camera frame as PNG), server {url}",
        flush=True,
    )
    server = start_server(port, args.threads or None, max_sessions=max(32, args.clients))
    try:
        new_agent, _, _ = shared_model_agents("default")
        rows = []
        # -- load over HTTP ----------------------------------------------------------------------------
        with RemoteAgent(url) as warm:  # warm the server's allocator and kernels outside the timing
            episode(warm, 0, clips[0, :5])
        wall, http = run_threads(args.clients, lambda k: episode(RemoteAgent(url), k, clips[k]))
        rows.append(report(f"HTTP, {args.clients} concurrent clients", wall, http, args.steps))

        # -- memory: sessions created and deleted --------------------------------------------------------
        def churn(n_requests: int) -> None:
            agent = RemoteAgent(url)
            for s in range(n_requests // 5):  # create, observe, observe, act, delete
                agent.reset(INSTRUCTIONS[s % len(INSTRUCTIONS)])
                agent.observe(clips[s % args.clients, 0])
                agent.observe(clips[s % args.clients, 1])
                agent.act(clips[s % args.clients, 2])
                agent._end_session()
            agent.close()

        churn(50)
        before = rss_mib(server.pid)
        t0 = time.perf_counter()
        churn(args.rss_requests)
        after = rss_mib(server.pid)
        churn(args.rss_requests)
        again = rss_mib(server.pid)
        rows.append(
            {
                "label": "server RSS MiB",
                "warm": before,
                "after": after,
                "again": again,
                "requests_per_round": args.rss_requests,
            }
        )
        print(
            f"  server RSS: {before:.0f} MiB after warm-up, {after:.0f} MiB after {args.rss_requests} requests "
            f"({args.rss_requests // 5} sessions created and deleted, {time.perf_counter() - t0:.0f} s for both "
            f"rounds), {again:.0f} MiB after {args.rss_requests} more; live sessions "
            f"{RemoteAgent(url).health()['sessions']}",
            flush=True,
        )

        # -- the same steps in-process: what HTTP costs, and threads on one shared model ------------------
        n1 = min(args.steps, 50)
        t0 = time.perf_counter()
        one_http = [episode(RemoteAgent(url), 0, clips[0, :n1])]
        rows.append(report("HTTP, 1 client", time.perf_counter() - t0, one_http, n1))
        t0 = time.perf_counter()
        one_local = [episode(new_agent(), 0, clips[0, :n1])]
        rows.append(report("in-process, 1 agent", time.perf_counter() - t0, one_local, n1))
        from vidnav.serve.frames import encode_png

        t0 = time.perf_counter()
        sizes = [len(encode_png(f)) for f in clips[0, :n1]]
        png_ms = (time.perf_counter() - t0) / n1 * 1000
        overhead = (np.mean(one_http[0][0]) - np.mean(one_local[0][0])) * 1000
        print(
            f"  HTTP layer per step, 1 client: {overhead:.1f} ms (mean latency difference), of which PNG encoding "
            f"{png_ms:.1f} ms; frames {np.mean(sizes) / 1024:.0f} KiB as PNG",
            flush=True,
        )

        agents = [new_agent() for _ in range(args.clients)]
        wall, local = run_threads(args.clients, lambda k: episode(agents[k], k, clips[k]))
        rows.append(report(f"in-process, {args.clients} threads, one model", wall, local, args.steps))
        t0 = time.perf_counter()
        alone = [episode(new_agent(), k, clips[k]) for k in range(args.clients)]
        rows.append(
            report(
                f"in-process, {args.clients} episodes one after another", time.perf_counter() - t0, alone, args.steps
            )
        )
        same = all(a[1] == b[1] == c[1] for a, b, c in zip(http, local, alone))
        print(f"  plans equal across HTTP / threaded / sequential: {same}", flush=True)

        # -- what batching the vision tower across sessions could save ----------------------------------
        model = agents[0].model
        batch = torch.from_numpy(clips[:, 0].copy())[:8]
        with torch.no_grad():
            for _ in range(2):
                model.encode_frames(batch)
            t0 = time.perf_counter()
            for _ in range(3):
                model.encode_frames(batch)
            batched = (time.perf_counter() - t0) / 3 / len(batch) * 1000
            t0 = time.perf_counter()
            for _ in range(3):
                for f in batch:
                    model.encode_frames(f)
            single = (time.perf_counter() - t0) / 3 / len(batch) * 1000
        act_ms = float(np.median(one_local[0][0])) * 1000
        print(
            f"  vision tower per frame: {single:.1f} ms alone, {batched:.1f} ms in a batch of {len(batch)}: batching "
            f"it across sessions would save at most {single - batched:.1f} ms of a {act_ms:.1f} ms act() step "
            f"({(single - batched) / act_ms * 100:.0f} %)"
        )
        rows.append(
            {
                "label": "vision tower ms per frame",
                "alone": single,
                "batch8": batched,
                "act_p50": act_ms,
                "http_overhead_ms": overhead,
                "png_ms": png_ms,
                "plans_equal": same,
            }
        )
        if args.json:
            import json

            args.json.write_text(
                json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
