"""`vidnav eval --workers 2` ends with one clear error when a worker fails to start or dies (issue #33 defect 6,
issue #32 point 7): it used to wait forever. Run as a subprocess, so a hang fails the test instead of the suite."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil

VIDNAV = [sys.executable, "-c", "from vidnav.cli import main; main()"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_an_unknown_agent_with_two_workers_is_a_one_line_error(tiny_benchmark, tmp_path):
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            *VIDNAV,
            "eval",
            "--agent",
            "no-such-agent",
            "--data",
            str(tiny_benchmark),
            "--episodes",
            "4",
            "--workers",
            "2",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(),
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown agent 'no-such-agent': use one of oracle"), err
    assert time.monotonic() - t0 < 120


def test_a_worker_killed_mid_run_ends_it_and_a_rerun_resumes(tiny_benchmark, tmp_path):
    out = tmp_path / "out"
    cmd = [
        *VIDNAV,
        "eval",
        "--agent",
        "oracle",
        "--data",
        str(tiny_benchmark),
        "--episodes",
        "6",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 240
        while not ((out / "results.jsonl").exists() and (out / "results.jsonl").read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, "eval ended before a result or took too long"
            time.sleep(0.2)
        workers = [c for c in psutil.Process(proc.pid).children() if "resource_tracker" not in " ".join(c.cmdline())]
        assert len(workers) == 2
        os.kill(workers[0].pid, signal.SIGKILL)  # as the OOM killer would
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert "killed by SIGKILL" in err and len(err.strip().splitlines()) == 1
    kept = [json.loads(x)["episode_id"] for x in (out / "results.jsonl").read_text().splitlines()]
    assert 1 <= len(kept) < 6
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert rerun.returncode == 0, rerun.stderr
    ids = [json.loads(x)["episode_id"] for x in (out / "results.jsonl").read_text().splitlines()]
    assert ids[: len(kept)] == kept and sorted(ids, key=int) == [str(i) for i in range(1, 7)]
