"""Registry domain services: repositories, blobs, uploads, manifests, tags, listings.

Services take and return plain values, raise ``dockyard.errors`` and write outbox events in the same
transaction as each change. They never see HTTP.
"""
