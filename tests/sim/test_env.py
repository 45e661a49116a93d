"""VLNEnv: the gymnasium contract, episode life cycle and live metrics."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from vidnav.errors import VidNavError
from vidnav.sim.env import ENV_ID, VLNEnv, generated_task
from vidnav.sim.navmap import FORWARD, LEFT, STOP


@pytest.fixture(scope="module")
def env():
    e = VLNEnv()
    yield e
    e.close()


def test_registered_and_passes_gymnasium_checker():
    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_seeded_reset_is_reproducible(env):
    obs1, _ = env.reset(seed=5)
    pose1 = env.pose
    obs2, _ = env.reset(seed=5)
    assert obs1["instruction"] == obs2["instruction"] and env.pose == pose1
    assert np.array_equal(obs1["rgb"], obs2["rgb"])
    assert obs1["rgb"].shape == (224, 224, 3) and obs1["rgb"].dtype == np.uint8
    obs3, _ = env.reset(seed=6)
    assert obs3["instruction"] != obs1["instruction"]


def test_expert_reaches_the_goal_with_live_metrics(env):
    obs, info = env.reset(seed=2)
    d0 = info["distance_to_goal"]
    assert d0 >= 5.0 and info["success"] == 0.0
    done = False
    while not done:
        obs, reward, term, trunc, info = env.step(env.expert_action())
        done = term or trunc
    assert term and not trunc and reward == 1.0
    assert info["success"] == 1.0 and info["oracle_success"] == 1.0 and info["distance_to_goal"] < 3.0
    assert info["spl"] > 0.9 and info["collisions"] == 0
    moves = sum(1 for a, b in zip(env.positions, env.positions[1:]) if a != b)
    assert info["trajectory_length"] == pytest.approx(0.25 * moves)


def test_stop_at_start_fails_and_ends_the_episode(env):
    env.reset(seed=2)
    _, reward, term, trunc, info = env.step(STOP)
    assert term and reward == 0.0 and info["success"] == 0.0 and info["spl"] == 0.0 and info["steps"] == 1
    with pytest.raises(VidNavError, match="episode is over"):
        env.step(FORWARD)


def test_truncates_at_max_steps_and_counts_collisions():
    env = VLNEnv(max_steps=60)
    try:
        env.reset(seed=1)
        trunc, steps = False, 0
        while not trunc:  # walking straight ahead must meet a wall within 60 steps (15 m) in these houses
            _, _, term, trunc, info = env.step(FORWARD)
            steps += 1
            assert not term
        assert steps == 60 and info["collisions"] > 0 and info["success"] == 0.0
        assert info["collisions"] == sum(1 for a, b in zip(env.positions, env.positions[1:]) if a == b)
    finally:
        env.close()


def test_turning_changes_heading_by_15_degrees(env):
    env.reset(seed=3)
    h0 = env.pose[2]
    env.step(LEFT)
    assert np.isclose(env.pose[2] - h0, np.radians(15))


@pytest.mark.parametrize("bad", [4, -1, "jump", None])
def test_invalid_actions_are_rejected_clearly(env, bad):
    env.reset(seed=3)
    with pytest.raises(VidNavError, match="invalid action"):
        env.step(bad)


def test_generated_task_is_a_valid_vln_task():
    t = generated_task(9)
    assert t.instruction and len(t.reference) >= 2 and t.gt_locations
    assert t.house.room_at(t.start[0], t.start[1]) is not None


def test_import_vidnav_alone_registers_the_environment():
    """`import vidnav; gymnasium.make("vidnav/MiniHouseVLN-v0")` in a fresh interpreter (no vidnav.sim import)."""
    import subprocess
    import sys

    code = (
        "import gymnasium, sys, vidnav; spec = gymnasium.spec('vidnav/MiniHouseVLN-v0'); "
        "assert 'vidnav.sim' not in sys.modules; print(spec.entry_point)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "vidnav.sim.env:VLNEnv"
