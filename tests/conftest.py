import os
from pathlib import Path

import pytest

# Headless rendering everywhere in tests; keep caches inside the test session when asked.
os.environ.setdefault("PYGLET_HEADLESS", "1")

REPO = Path(__file__).resolve().parents[1]
R2R_SAMPLE = REPO.parent / "shared" / "data" / "r2r_ce_sample"


@pytest.fixture
def r2r_sample_dir() -> Path:
    """The real VLN-CE (R2R-CE) fixture folder beside the repo; skip clearly when absent."""
    if not R2R_SAMPLE.is_dir():
        pytest.skip(f"real R2R-CE fixtures not found at {R2R_SAMPLE} (they live in ../shared/data/r2r_ce_sample)")
    return R2R_SAMPLE


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory) -> Path:
    """A small benchmark built once per test session: 2 train houses, 2 unseen houses, 6 episodes each."""
    from vidnav.data.build import BuildConfig, build_benchmark

    out = tmp_path_factory.mktemp("bench")
    build_benchmark(
        out,
        BuildConfig(
            train_houses=2, unseen_houses=2, episodes_per_house=6, val_seen_per_house=3, unseen_per_house=6, seed=3
        ),
        workers=1,
        progress=False,
    )
    return out
