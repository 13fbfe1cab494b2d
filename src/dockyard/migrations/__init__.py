"""Alembic migrations of the metadata DB, and the runner that applies them."""
