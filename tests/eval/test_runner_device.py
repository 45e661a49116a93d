"""`vidnav eval` / `vidnav data rollouts` --device and --dtype (issue #29 point 3): a model agent runs where and
in what precision it is told, one GPU per worker with `--device cuda --workers N`; what cannot work is a one-line
error naming the option before any model loads; the run records what it used."""

import json

import pytest
import torch

from vidnav.errors import VidNavError
from vidnav.eval import runner
from vidnav.eval.runner import evaluate
from vidnav.pool import worker_device


def _gpus(monkeypatch, count: int) -> None:
    """Pretend this machine has ``count`` CUDA devices (0: none)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_worker_device_gives_each_worker_its_gpu_with_cuda_and_shares_any_other_device():
    assert [worker_device("cuda", i, 4) for i in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert worker_device("cuda", 0, 1) == "cuda"
    assert [worker_device("cuda:1", i, 2) for i in range(2)] == ["cuda:1", "cuda:1"]  # one GPU named: shared
    assert [worker_device(d, 1, 2) for d in ("cpu", "mps", None)] == ["cpu", "mps", None]
    with pytest.raises(ValueError):
        worker_device("cuda", 2, 2)


def test_an_unknown_dtype_is_a_one_line_cli_error_before_anything_loads(tiny_benchmark, tmp_path, capsys):
    from vidnav.cli import main

    out = tmp_path / "o"
    args = ["eval", "--agent", "default", "--data", str(tiny_benchmark), "--episodes", "1", "--out", str(out)]
    with pytest.raises(SystemExit) as e:
        main([*args, "--dtype", "float8"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --dtype must be one of float32, bfloat16, float16, got 'float8'"]
    assert not out.exists()  # refused before the run folder, let alone the model


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "meta"])
def test_an_unknown_device_is_refused(tiny_benchmark, tmp_path, device):
    with pytest.raises(VidNavError, match=r"^--device must be cpu, cuda, cuda:N or mps"):
        evaluate(tiny_benchmark, "val_unseen", "default", tmp_path / "o", episodes=1, device=device, progress=False)


def test_cuda_on_a_machine_without_cuda_is_refused(tiny_benchmark, tmp_path, monkeypatch):
    _gpus(monkeypatch, 0)
    with pytest.raises(VidNavError, match=r"^--device cuda: this machine has no CUDA device"):
        evaluate(tiny_benchmark, "val_unseen", "default", tmp_path / "o", episodes=1, device="cuda", progress=False)
    assert not (tmp_path / "o").exists()


def test_more_cuda_workers_than_gpus_or_a_missing_gpu_is_refused(tiny_benchmark, tmp_path, monkeypatch):
    _gpus(monkeypatch, 2)
    kw = dict(episodes=2, progress=False)
    with pytest.raises(VidNavError, match=r"^--workers 3 with --device cuda .* this machine has 2 \("):
        evaluate(tiny_benchmark, "val_unseen", "default", tmp_path / "o", device="cuda", workers=3, **kw)
    with pytest.raises(VidNavError, match=r"^--device cuda:2: this machine has 2 CUDA device"):
        evaluate(tiny_benchmark, "val_unseen", "default", tmp_path / "o", device="cuda:2", **kw)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("agent", ["oracle", "random", "forward", "symbolic", "http://127.0.0.1:9"])
def test_baselines_and_served_agents_refuse_device_and_dtype(tiny_benchmark, tmp_path, agent):
    with pytest.raises(VidNavError, match=r"^--dtype bfloat16 applies to (model agents|a model loaded here)"):
        evaluate(tiny_benchmark, "val_unseen", agent, tmp_path / "o", episodes=1, dtype="bfloat16", progress=False)


def test_cuda_workers_each_get_their_own_gpu(tiny_benchmark, tmp_path, monkeypatch):
    """What evaluate hands the pool: worker i's initializer arguments name cuda:i (the pool is stopped there)."""
    import vidnav.pool

    _gpus(monkeypatch, 2)
    seen = {}

    class Stop(Exception):
        pass

    def fake_pool(fn, jobs, workers, initializer=None, initargs=(), what="worker", worker_initargs=None):
        seen.update(workers=workers, args=worker_initargs)
        raise Stop

    monkeypatch.setattr(vidnav.pool, "run_pool", fake_pool)
    with pytest.raises(Stop):
        evaluate(
            tiny_benchmark, "val_unseen", "default", tmp_path / "o", episodes=2, workers=2, device="cuda",
            dtype="bfloat16", progress=False,
        )  # fmt: skip
    assert seen["workers"] == 2
    assert [a[-2:] for a in seen["args"]] == [("cuda:0", "bfloat16"), ("cuda:1", "bfloat16")]
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert (run["device"], run["dtype"]) == ("cuda", "bfloat16")


def test_the_shipped_agent_runs_in_bfloat16_on_the_cpu_and_the_run_records_it(tiny_benchmark, tmp_path):
    out = tmp_path / "o"
    kw = dict(episodes=1, env_kw={"max_steps": 4}, progress=False)
    evaluate(tiny_benchmark, "val_unseen", "default", out, device="cpu", dtype="bfloat16", **kw)
    (rec,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert (rec["device"], rec["dtype"]) == ("cpu", "bfloat16")  # read from the worker's model weights
    assert 1 <= rec["steps"] <= 4
    run = json.loads((out / "run.json").read_text())
    assert (run["device"], run["dtype"]) == ("cpu", "bfloat16")
    with pytest.raises(VidNavError, match=r"dtype='bfloat16'; now dtype='float32'"):  # no mixing precisions
        evaluate(tiny_benchmark, "val_unseen", "default", out, **kw)


def test_a_run_json_from_before_device_and_dtype_resumes(tmp_path):
    """Missing keys count as the defaults: cpu / float32 for a model agent, None for a baseline."""
    for agent, placement in (("default", ("cpu", "float32")), ("oracle", (None, None))):
        out = tmp_path / agent
        out.mkdir()
        meta = {k: None for k in runner.RUN_KEYS} | {"agent": agent}
        meta["device"], meta["dtype"] = placement
        old = {k: v for k, v in meta.items() if k not in ("device", "dtype")}
        (out / "run.json").write_text(json.dumps(old))
        runner._check_run(out, {**meta, **runner._placement(agent, None, None)})  # no raise
        with pytest.raises(VidNavError, match="another run"):
            runner._check_run(out, {**meta, "dtype": "bfloat16"})


def test_dagger_rollouts_run_the_policy_in_bfloat16(tiny_benchmark, tmp_path):
    from vidnav.agent import DEFAULT_AGENT_DIR
    from vidnav.data.rollouts import collect_rollouts

    out = tmp_path / "r"
    with pytest.raises(VidNavError, match=r"^--dtype must be one of"):
        collect_rollouts(tiny_benchmark, "train", out, policy=str(DEFAULT_AGENT_DIR), dtype="half", progress=False)
    stats = collect_rollouts(
        tiny_benchmark, "train", out, policy=str(DEFAULT_AGENT_DIR), beta=0.5, episodes=1, max_steps=3,
        device="cpu", dtype="bfloat16", progress=False,
    )  # fmt: skip
    assert stats["episodes"] == 1
    (rec,) = [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    assert (rec["device"], rec["dtype"]) == ("cpu", "bfloat16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_shipped_agent_on_cuda_in_bfloat16(tiny_benchmark, tmp_path):
    out = tmp_path / "o"
    evaluate(
        tiny_benchmark, "val_unseen", "default", out, episodes=2, workers=min(2, torch.cuda.device_count()),
        device="cuda", dtype="bfloat16", env_kw={"max_steps": 12}, progress=False,
    )  # fmt: skip
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and all(r["device"].startswith("cuda") and r["dtype"] == "bfloat16" for r in recs)
