"""vidnav.sim: the simulator (houses, the navigation map, the 3-D world, the gymnasium environment)."""

ENV_ID = "vidnav/MiniHouseVLN-v0"  # the gymnasium id of vidnav.sim.env.VLNEnv, registered on `import vidnav`
