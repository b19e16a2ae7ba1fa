"""Segmentation models: backbones, strategies, decoders; their weights and the hub preflight."""
