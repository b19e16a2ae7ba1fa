"""Data stage: download, synthesis, splits, stores, the torch dataset, augmentation, converters."""
