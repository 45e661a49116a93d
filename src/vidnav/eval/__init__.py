"""Evaluation: VLN-CE measures (metrics.py), baseline and model agents (agents.py), the episode runner with its
resumable results and metric table (runner.py), episode videos (video.py, topdown.py) and the CLI (cli.py)."""
