"""Webhooks: event names, payload formats, signatures, the SSRF guard and the HTTP sender.

The modules here are pure or do network I/O only; the tables, services and routes that use them live in
``dockyard.models.webhooks`` and the webhook services. See ``docs/webhooks.md``.
"""
