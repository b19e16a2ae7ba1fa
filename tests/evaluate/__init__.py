"""Tests of densebench.evaluate."""
