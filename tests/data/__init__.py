"""Tests of densebench.data."""
