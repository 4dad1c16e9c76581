"""Helpers for pont's benchmark harness (bench/run.sh). Standard library only."""
