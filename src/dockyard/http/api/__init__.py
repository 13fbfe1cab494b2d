"""The Hub REST API under ``/api/v2`` (Docker Hub's shapes; RFC 9457 problem+json errors; an OpenAPI document
generated from the routes) and ``/v1/search`` for ``docker search``."""
