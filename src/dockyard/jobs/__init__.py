"""Background work that survives restarts and replicas, coordinated through the metadata DB.

- ``queue``: ``enqueue(conn, kind, payload, …)`` in the caller's transaction; job states.
- ``handlers``: what a handler is (``JobContext``) and how it reports its outcome (``Retry``, ``Fail``).
- ``runner``: ``JobRunner`` — claims due jobs under leases, runs handlers, records outcomes, stops gracefully.
- ``store``: the job table's statements (claim with ``SKIP LOCKED`` / ``BEGIN IMMEDIATE``, renew, finish, purge).
- ``registry``: handler factories by kind, and ``running_jobs()`` for the processes that run jobs.
- ``periodic``: DB-lease periodic jobs that run on one replica at a time (garbage collection, retention).

``docs/architecture.md`` ("Background jobs") describes the contract.
"""
