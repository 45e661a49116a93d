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
