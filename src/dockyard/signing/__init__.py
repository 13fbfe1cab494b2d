"""Image signing: cosign-compatible signature formats, verification against trusted keys, and key handling.

Pure crypto and format code (no DB, no network); services that store keys and results live elsewhere.
"""
