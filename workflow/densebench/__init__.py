"""PFM-DenseBench workflow package."""

__version__ = "0.1.0"
