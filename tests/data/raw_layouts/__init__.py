"""Tiny raw trees in each dataset's real on-disk layout (one module per dataset).

Each module `<dataset>.py` defines `make_raw(root: Path, card: dict) -> None`, which writes a few
small files exactly as the dataset's archive extracts (folder and file names, .mat keys, npy
shapes, hdf5 groups, palette / 0-255 masks), and `corrupt_mask(root: Path) -> Path`, which
damages one label file of such a tree (out-of-range value, wrong shape or undecodable) and
returns its path.
"""
