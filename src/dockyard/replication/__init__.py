"""Replication (Harbor's replication rules): copying images from this Dockyard to another registry (push) or from
another registry into this Dockyard (pull), with filters, namespace mapping, deletes, signatures and referrers.

Modules, one concern each:

- ``rules``: the rules and their runs' history as a namespace's owners manage them (``ReplicationService``), and
  ``enqueue_run`` (a run row and its job in one transaction);
- ``endpoints``: the two sides — this Dockyard through the registry services, another registry through the
  pull-through cache's ``UpstreamClient`` (its token flow and sealed credentials);
- ``copier``: one artifact at a time — manifests, indexes with their children, blobs streamed or mounted,
  referrers — each with its outcome;
- ``runs``: one attempt of a run: what the rule and the run's scope select, results recorded, the run's end and
  its event;
- ``tasks``: the ``replication.run`` job, the event bus's subscriber for push rules and the schedule.

``docs/proxy-and-replication.md`` is the user's view.
"""
