"""Dockyard: a self-hosted Docker Hub — OCI registry, hub API and UI."""

__version__ = "0.1.0"
