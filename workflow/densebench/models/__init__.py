"""Segmentation models: backbones from the model registry, strategies, decoders."""
