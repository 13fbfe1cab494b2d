"""The S3 driver: blobs as objects in an S3 (or S3-compatible) bucket, through aiobotocore.

Modules: ``url`` (the ``s3://`` storage URL), ``segments`` (pure planning: S3's part limits, an upload's segment
chain, reopening, the multipart plan of a commit), ``client`` (``BucketClient``: the S3 calls and their errors),
``writer`` (``S3UploadWriter``), ``assemble`` (a commit, server-side), ``store`` (``S3BlobStore``). Keys are drawn
in ``dockyard.storage.paths``.

Committed blobs live at ``<prefix>/blobs/<alg>/<xx>/<hex>``, exactly as on the filesystem. S3 objects are immutable
and cannot be appended to, and the parts of an unfinished S3 multipart upload cannot be read back, so an upload is
kept as a chain of ordinary objects (*segments*) under its own prefix, each named by the upload offset of its first
byte::

    uploads/<id>/info                      marker: the upload exists (create_upload)
    uploads/<id>/s/00000000000000000000    segment holding bytes [0, n0)
    uploads/<id>/s/<n0 zero-padded>        segment holding bytes [n0, n1) …

The stored upload is the chain that starts at 0 and continues at each segment's end; objects off the chain are
leftovers of an interrupted request and are deleted by the next ``open_upload``. Because the state is all in the
bucket, any replica can continue an upload, and nothing is kept on local disk or in memory between requests.

A writer buffers up to a part size (8 MiB by default, growing for very large uploads so that a blob never needs more
than S3's 10,000 parts) and PUTs each full buffer as a segment while it receives the next one. What is left when the
request ends is PUT as a small segment (a *piece*). Pieces of later requests pile up after it until, together with
the new bytes, they reach S3's 5 MiB minimum part size; then they are read back (less than 5 MiB) and rewritten with
the new bytes as one segment. So every segment but the trailing few pieces is a valid multipart part, small-chunk
uploads cost about two PUTs of each byte instead of one rewrite of a growing tail per request, and memory per writer
stays at about two part sizes. Opening at an offset drops the segments that start at or past it (a failed request
stored more than the registry recorded); a segment cut by the offset is read back up to it and rewritten, with any
pieces before it, as one segment under the first one's key — a single atomic PUT as far as the chain is concerned —
but only once the new request has written something: until then the stored prefix is untouched, so ``abort`` loses
nothing that an earlier ``close`` persisted.

``commit_upload`` assembles the blob server-side: a multipart upload to the final key whose parts are
``UploadPartCopy`` ranges of the segments, with only the trailing pieces (< 5 MiB) passing through the process; a
blob held in a single segment is one ``CopyObject``, a small one a single PUT. Completing a multipart upload, like a
PUT, is atomic for readers. Afterwards the upload's objects are deleted.

Requires strong read-after-write and list consistency (AWS S3, MinIO, Ceph RGW, and moto all provide it). Configure
a bucket lifecycle rule that aborts incomplete multipart uploads: a crash in the middle of a commit leaves one.
"""

from dockyard.storage.s3.segments import MIN_PART
from dockyard.storage.s3.store import S3BlobStore
from dockyard.storage.s3.url import S3Options, parse_s3_url

__all__ = ["MIN_PART", "S3BlobStore", "S3Options", "parse_s3_url"]
