"""Hub API route modules, one per resource; each exposes ``router``."""
