import gzip
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidnav.errors import VidNavError
from vidnav.metrics import (
    SUMMARY_KEYS,
    drop_repeats,
    dtw,
    ndtw,
    oracle_success,
    path_length,
    sdtw,
    spl,
    summarize,
)

GT_FILE = "R2R_VLNCE_v1-3_preprocessed_val_unseen_gt_first50.json.gz"


def naive_dtw(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    n, m = len(a), len(b)
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            c = np.linalg.norm(a[i - 1] - b[j - 1])
            D[i, j] = c + min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])
    return D[n, m]


point = st.tuples(st.floats(-20, 20), st.floats(-20, 20))
paths = st.lists(point, min_size=1, max_size=12)


def test_path_length():
    assert path_length([]) == 0.0
    assert path_length([(1.0, 2.0)]) == 0.0
    assert path_length([(0, 0), (3, 4), (3, 4), (3, 5)]) == pytest.approx(6.0)
    assert path_length([[0, 0, 0], [1, 1, 1]]) == pytest.approx(math.sqrt(3))  # all coordinates count


def test_identical_paths():
    ref = [(0, 0), (1, 0), (1, 2), (4, 2)]
    assert dtw(ref, ref) == 0.0
    assert ndtw(ref, ref) == 1.0


def test_dtw_by_hand():
    # cost rows: p0 [0, 2], p1 [1, 1], p2 [2, 0] -> D = [[0, 2], [1, 1], [3, 1]]
    assert dtw([(0, 0), (1, 0), (2, 0)], [(0, 0), (2, 0)]) == pytest.approx(1.0)
    # single points: the distance itself
    assert dtw([(0, 0, 0)], [(3, 0, 4)]) == pytest.approx(5.0)
    # one point against a path: sum of distances to every reference point
    assert dtw([(0, 0)], [(0, 0), (0, 1), (0, 3)]) == pytest.approx(4.0)


def test_ndtw_by_hand():
    # DTW = 1 (above), len(reference) = 2, success_distance 3 -> exp(-1/6)
    assert ndtw([(0, 0), (1, 0), (2, 0)], [(0, 0), (2, 0)]) == pytest.approx(math.exp(-1 / 6))
    assert ndtw([(0, 0), (1, 0), (2, 0)], [(0, 0), (2, 0)], success_distance=1.0) == pytest.approx(math.exp(-1 / 2))
    assert sdtw([(0, 0), (1, 0), (2, 0)], [(0, 0), (2, 0)], success=False) == 0.0
    assert sdtw([(0, 0), (1, 0), (2, 0)], [(0, 0), (2, 0)], success=True) == pytest.approx(math.exp(-1 / 6))


def test_duplicates_dropped():
    ref = [(0, 0), (1, 0), (2, 0)]
    # standing still at (5, 0) three times would add 3x its cost to DTW if kept
    stuck = [(0, 0), (5, 0), (5, 0), (5, 0), (2, 0)]
    assert ndtw(stuck, ref) == pytest.approx(ndtw([(0, 0), (5, 0), (2, 0)], ref))
    assert dtw(stuck, ref) > dtw([(0, 0), (5, 0), (2, 0)], ref)
    assert drop_repeats([(1, 1), (1, 1), (2, 2), (1, 1)]).tolist() == [[1, 1], [2, 2], [1, 1]]
    assert ndtw([(0, 0)] * 4 + [(1, 0), (2, 0), (2, 0)], ref) == 1.0


def test_spl():
    assert spl(True, 10.0, 10.0) == 1.0
    assert spl(True, 10.0, 20.0) == 0.5
    assert spl(True, 10.0, 5.0) == 1.0  # a path shorter than the geodesic (noise) does not exceed 1
    assert spl(False, 10.0, 10.0) == 0.0
    assert spl(1.0, 0.0, 0.0) == 1.0
    with pytest.raises(VidNavError):
        spl(True, -1.0, 2.0)


def test_oracle_success():
    assert oracle_success([10, 5, 2.9, 8]) == 1.0
    assert oracle_success([10, 5, 3.0]) == 0.0  # strictly closer than the radius, as VLN-CE and the env count it
    assert oracle_success([10, 5, 2.999]) == 1.0
    assert oracle_success([10, 5, 3.1]) == 0.0
    assert oracle_success([10, 0.4], radius=0.5) == 1.0
    assert oracle_success([]) == 0.0


def test_bad_paths():
    with pytest.raises(VidNavError, match="coordinates"):
        dtw([(0, 0)], [(0, 0, 0)])
    with pytest.raises(VidNavError):
        dtw([], [(0, 0)])
    with pytest.raises(VidNavError):
        path_length([(0, 0, 0, 0)])
    with pytest.raises(VidNavError):
        ndtw([(0, 0)], [(0, 0)], success_distance=0)


def test_summarize():
    results = [
        {
            "success": 1.0,
            "spl": 0.5,
            "ndtw": 0.8,
            "sdtw": 0.8,
            "oracle_success": 1.0,
            "navigation_error": 1.0,
            "trajectory_length": 10.0,
            "steps": 40,
            "collisions": 0,
        },
        {
            "success": 0.0,
            "spl": 0.0,
            "ndtw": 0.2,
            "sdtw": 0.0,
            "oracle_success": 1.0,
            "distance_to_goal": 7.0,
            "path_length": 6.0,
            "steps": 20,
            "collisions": 2,
        },
    ]
    s = summarize(results)
    assert set(s) == {"episodes", *SUMMARY_KEYS}
    assert s["episodes"] == 2
    assert s["success"] == 0.5 and s["spl"] == 0.25 and s["ndtw"] == pytest.approx(0.5)
    assert s["navigation_error"] == 4.0 and s["trajectory_length"] == 8.0
    assert s["steps"] == 30 and s["collisions"] == 1
    empty = summarize([])
    assert empty["episodes"] == 0 and empty["success"] is None


@settings(max_examples=60, deadline=None)
@given(paths, paths)
def test_dtw_matches_naive_and_is_symmetric(a, b):
    d = dtw(a, b)
    assert d >= 0
    assert d == pytest.approx(naive_dtw(a, b), rel=1e-9, abs=1e-9)
    assert d == pytest.approx(dtw(b, a), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(paths, paths)
def test_ndtw_in_unit_interval(a, b):
    v = ndtw(a, b)
    assert 0.0 <= v <= 1.0


@settings(max_examples=60, deadline=None)
@given(paths, paths, st.floats(1000, 5000))
def test_adding_a_far_point_raises_dtw(a, b, far):
    # a point farther from every reference point than the whole current DTW can only add cost
    base = dtw(a, b)
    longer = dtw(a + [(far, far)], b)
    assert longer >= base
    assert longer >= far  # it must be matched to something at least ~far away


def _real_gt(r2r_sample_dir):
    return json.loads(gzip.decompress((r2r_sample_dir / GT_FILE).read_bytes()))


def test_real_gt_paths(r2r_sample_dir):
    gt = _real_gt(r2r_sample_dir)
    assert gt
    for ep_id, g in gt.items():
        loc = np.asarray(g["locations"], float)
        assert ndtw(loc, loc) == 1.0, ep_id
        assert path_length(loc) > 0
        # shift every point by s along x. If s is at most half the smallest distance between two distinct
        # locations, any off-diagonal match costs >= (min_dist - s) >= s, every warping path has >= n cells,
        # so the diagonal (cost s each) is optimal: DTW = n*s and nDTW = exp(-s / success_distance).
        diff = np.linalg.norm(loc[:, None] - loc[None, :], axis=2)
        np.fill_diagonal(diff, np.inf)
        s = float(diff.min()) / 4
        assert s > 0, f"episode {ep_id}: gt locations repeat a point"
        shifted = loc + np.array([s, 0.0, 0.0])
        n = len(loc)
        assert dtw(shifted, loc) == pytest.approx(n * s, rel=1e-9)
        assert ndtw(shifted, loc) == pytest.approx(math.exp(-n * s / (n * 3.0)), rel=1e-9)
        assert ndtw(shifted, loc) == pytest.approx(math.exp(-s / 3.0), rel=1e-9)


def test_eval_metrics_is_the_old_name_of_vidnav_metrics():
    import vidnav.eval.metrics as old
    import vidnav.metrics as new

    assert old.__all__ == new.__all__
    assert all(getattr(old, name) is getattr(new, name) for name in new.__all__)
