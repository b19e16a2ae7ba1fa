"""Tests of densebench.report."""
