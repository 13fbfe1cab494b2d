"""SQLAlchemy engine, units of work (read and write sessions) and Alembic migrations."""
