"""The ``dockyard`` command."""
