"""Backups of the embedded deployment (``embedded``: ``dockyard backup`` / ``restore``) and the consistency check
between the database and storage (``fsck``: ``dockyard fsck``) that says whether a deployment — a restored one
included — can serve every tag it lists."""
