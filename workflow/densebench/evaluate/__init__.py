"""Evaluate stage: prediction, the confusion-file format, metrics and bootstrap."""
