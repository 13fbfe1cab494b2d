"""Building a committed blob from an upload's pieces server-side, in one step that is atomic for readers: a single
PUT for a small blob, one ``CopyObject`` for a blob held in one segment, else a multipart upload whose parts are
``UploadPartCopy`` ranges of the segments, with only the trailing small pieces passing through the process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockyard.storage.base import StorageError
from dockyard.storage.s3.client import BucketClient, content_md5, s3_errors
from dockyard.storage.s3.segments import MAX_PARTS, CopyPart, DataPart, Piece, plan_parts

if TYPE_CHECKING:
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

_COMMIT_CONCURRENCY = 4
_BLOB_TYPE = "application/octet-stream"


async def assemble(objects: BucketClient, target: str, pieces: Sequence[Piece]) -> None:
    """Write ``pieces`` (in order) as object ``target``, in one atomic step for readers."""
    plan = plan_parts(pieces)
    if not plan or (len(plan) == 1 and isinstance(plan[0], DataPart)):
        await objects.put(target, await objects.read_pieces(pieces), content_type=_BLOB_TYPE)
        return
    client = await objects.client()
    bucket = objects.bucket
    only = plan[0]
    if len(plan) == 1 and isinstance(only, CopyPart) and only.length == only.piece.size:
        with s3_errors(f"copying {only.piece.key} to {target}"):
            await client.copy_object(
                Bucket=bucket,
                Key=target,
                CopySource={"Bucket": bucket, "Key": only.piece.key},
                MetadataDirective="REPLACE",
                ContentType=_BLOB_TYPE,
            )
        return
    if len(plan) > MAX_PARTS:
        raise StorageError(f"{target} would need {len(plan)} parts, more than S3's {MAX_PARTS}")
    with s3_errors(f"starting multipart upload of {target}"):
        created = await client.create_multipart_upload(Bucket=bucket, Key=target, ContentType=_BLOB_TYPE)
    multipart_id = created["UploadId"]
    limit = asyncio.Semaphore(_COMMIT_CONCURRENCY)

    async def send(number: int, part: CopyPart | DataPart) -> CompletedPartTypeDef:
        async with limit:
            if isinstance(part, CopyPart):
                last = part.offset + part.length - 1
                with s3_errors(f"copying part {number} of {target}"):
                    copied = await client.upload_part_copy(
                        Bucket=bucket,
                        Key=target,
                        UploadId=multipart_id,
                        PartNumber=number,
                        CopySource={"Bucket": bucket, "Key": part.piece.key},
                        CopySourceRange=f"bytes={part.offset}-{last}",
                    )
                return {"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]}
            body = await objects.read_pieces(part.pieces)
            md5 = await asyncio.to_thread(content_md5, body)
            with s3_errors(f"uploading part {number} of {target}"):
                uploaded = await client.upload_part(
                    Bucket=bucket, Key=target, UploadId=multipart_id, PartNumber=number, Body=body, ContentMD5=md5
                )
            return {"PartNumber": number, "ETag": uploaded["ETag"]}

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(send(n, part)) for n, part in enumerate(plan, start=1)]
        with s3_errors(f"completing {target}"):
            await client.complete_multipart_upload(
                Bucket=bucket,
                Key=target,
                UploadId=multipart_id,
                MultipartUpload={"Parts": [task.result() for task in tasks]},
            )
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await asyncio.shield(client.abort_multipart_upload(Bucket=bucket, Key=target, UploadId=multipart_id))
        if isinstance(exc, BaseExceptionGroup):
            errors = exc.subgroup(StorageError)
            if errors is not None:
                raise errors.exceptions[0] from exc
        raise
