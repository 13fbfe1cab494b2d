"""The migration runner's fast path: the newest revision read from the scripts is Alembic's own head."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from dockyard.migrations.runner import alembic_config, head_revision


def test_head_revision_is_alembics_head() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == scripts.get_current_head()
