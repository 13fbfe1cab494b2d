"""Bytes only: the BlobStore protocol, the key layout (paths.py) and the drivers that implement it."""
