"""Tests of densebench.train."""
