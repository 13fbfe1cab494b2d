"""The pull-through cache: a namespace can be a proxy of an upstream registry (Docker Hub or any OCI registry).

A pull of ``<proxy-ns>/<path>`` that misses fetches from the upstream's ``<path>`` (``library/<path>`` for Docker
Hub's official images) and stores what it got through the registry services, content-addressed and shared with
local content. Modules, one concern each:

- ``manage``: the proxy settings (``proxies`` rows; credentials sealed with the server secret), who may change
  them (site administrators), and ``ProxyDirectory``, each process's short-lived view of them;
- ``upstream``: the client side of the OCI distribution API with httpx, Docker's token flow included;
- ``policy``: when a cached tag must be checked again upstream (the proxy's TTL) and the stale warning;
- ``flights``: single-flight blob fetches — one fetch per blob across processes and replicas (a lease row in
  ``proxy_fetches``), its bytes teed to every client of this process that asked while it streams into storage;
- ``cache``: ``ProxyCache``, what the ``/v2`` handlers call for manifests, blobs and referrers;
- ``mirror``: which names a registry mirror for docker.io serves from the proxy namespace.

``docs/proxy-and-replication.md`` is the user's view.
"""
