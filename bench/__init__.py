"""Side-by-side benchmark: Dockyard against the reference registry (CNCF distribution, ``docker-registry``).

Run it with ``python -m bench.run`` (``make bench``); ``--help`` lists the knobs, ``--quick`` is a smoke run.
"""
