"""Authorization: who the caller is (``principal``), what it holds on repositories (``permissions``), and the one
place that decides whether it may act on a repository or a namespace (``authorizer.require``).

The rule (written out in ``authorizer``): a caller who may not see the resource gets the answer for a missing
one (``NotFound``, 404); a caller who sees it but may not do this gets ``Denied`` (403). Repositories are seen by
who holds read on them, namespaces by everyone, objects addressed by their own id (webhooks, access tokens) by
who may manage them.
"""
