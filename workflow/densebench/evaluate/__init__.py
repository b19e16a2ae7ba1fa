"""Evaluate stage: prediction, confusion files, metric definitions, bootstrap and run scores."""
