"""SQLAlchemy engine and units of work (read and write transactions)."""
