"""Background work that survives restarts and replicas: DB-backed leases and periodic maintenance jobs."""
