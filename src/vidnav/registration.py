"""The gymnasium id of the vidnav environment, registered on ``import vidnav`` (the simulator itself is imported
only when the environment is made)."""

ENV_ID = "vidnav/MiniHouseVLN-v0"  # vidnav.sim.env.VLNEnv


def register_env() -> None:
    """Make ``gymnasium.make("vidnav/MiniHouseVLN-v0")`` work."""
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="vidnav.sim.env:VLNEnv", max_episode_steps=None)
