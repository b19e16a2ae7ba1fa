"""Tests of densebench.models."""
