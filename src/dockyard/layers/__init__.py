"""Looking inside images: a file index per layer and the services on it (``ImageFiles``: the merged filesystem of
a platform image — list, stat, read one file — and the diff of two images), for the Hub API, the web hub's
filesystem browser and tag diff, and later scanning.

Modules: ``tarstream`` (a layer as a tar stream: gzip/zstd/plain by magic bytes, entries, one member's content),
``bridge`` (that blocking reader in a worker thread over the async blob stream, bounded memory), ``index``
(``LayerIndexer``: one concurrency-safe build per layer digest into ``layer_indexes``/``layer_files``),
``merged`` (whiteouts, opaque directories, implicit directories), ``images`` (reference + platform → image,
authorized as a pull), ``diff``, ``service`` and ``tasks`` (indexing on push).

When an index is built — both, on purpose:

- **On push, in the background**: the first step of a pushed image's analysis (``dockyard.analysis.tasks``, one
  job per image; ``tasks.index_layers``). By the time someone opens the image its layers are usually indexed, and
  the inventory (SBOMs) finds them indexed too. Layers are shared, so a base layer is indexed once.
- **Lazily, on the first request** that needs a layer not indexed yet (pushed before this feature, the job still
  queued, or ``layer_index_on_push`` off): the request builds it itself — one streaming pass, a few seconds for
  50,000 files — or waits for whoever is building it, rather than answering "try again later": a browser page
  and an API client both get their answer in one request, and the build is shielded from the request being
  cancelled, so it completes for the next visitor. A repeat visit reads only index rows: it is instant.

Listings and stats read only the rows of the requested directory and its ancestors (two indexed look-ups per
request), never a whole image's tree; diffs read the two images' trees once each.
"""
