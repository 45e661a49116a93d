"""An output folder that cannot be one (a file, a read-only place) is a one-line VidNavError naming it, for every
job that takes the folder's writer lock (eval, rollouts, train), not an OS traceback (issue #33 defect 8)."""

import pytest

from vidnav.errors import VidNavError
from vidnav.io import writer_lock


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(VidNavError, match=r"--out .*f: .*f is a file"):
        with writer_lock(tmp_path / "f", "evaluation"):
            pass
    with pytest.raises(VidNavError, match=r"--out .*f/sub: .*f is a file"):
        with writer_lock(tmp_path / "f" / "sub", "evaluation"):
            pass
