"""Pure OCI rules with no I/O: digests, names and tags, media types, manifest parsing and validation."""
