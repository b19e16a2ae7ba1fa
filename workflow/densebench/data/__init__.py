"""Data stage: download, synthetic data, converters, splits, stores, dataset, resize, augment."""
