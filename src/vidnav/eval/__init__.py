"""Evaluation: VLN-CE measures (metrics.py), and later the runner and reports."""
