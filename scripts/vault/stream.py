"""Reading a backup back: download -> SHA-256 -> authenticate + decrypt -> zstd -d -> SHA-256.

Shared by ``restore`` and ``verify``. Every stage is a thread behind a bounded queue (see
scripts.vault.pipeline) so download, decryption, decompression and pg_restore overlap. Plaintext is
released only from authenticated chunks; the whole-object checks (stored SHA-256, dump SHA-256,
the final chunk's "last" flag, no trailing bytes) run when the stream ends — before any caller
acts on the result (swap, report).
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterator

import zstandard
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError

from scripts import aws
from scripts.vault import envelope
from scripts.contract import Contract
from scripts.vault.envelope import Decryptor, IntegrityError
from scripts.vault.pipeline import READ_SIZE, Digest, Reader, produce, read_chunks, threaded
from scripts.vault.layout import Manifest, aws_error, object_key
from scripts.postgres.globals import Globals

DOWNLOAD = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=3,
                          io_chunksize=1 << 20, max_io_queue=8, use_threads=True)


class _QueueWriter:
    """The non-seekable file boto3's download_fileobj writes to; each write feeds the pipeline."""

    def __init__(self, put) -> None:
        self._put = put

    def write(self, data: bytes) -> int:
        self._put(bytes(data))
        return len(data)


def download(contract: Contract, side: str, manifest: Manifest) -> Iterator[bytes]:
    """The stored object's bytes, via boto3's transfer manager (ranged GETs with retries)."""
    s3 = aws.client(contract, "s3", side)
    bucket = contract.buckets[side].bucket
    key = object_key(contract, manifest.tier, manifest.database, manifest.id)
    extra = {"VersionId": manifest.version_id} if side == "primary" and manifest.version_id else {}

    def body(put) -> None:
        try:
            s3.download_fileobj(bucket, key, _QueueWriter(put), ExtraArgs=extra, Config=DOWNLOAD)
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, f"download of s3://{bucket}/{key} failed") from None
        except RetriesExceededError as exc:  # s3transfer's own retries of a dropped stream ran out
            raise aws_error(exc.last_exception or exc, f"download of s3://{bucket}/{key} failed after retries") from None

    return produce(body, depth=8, name="download")


def _decrypt(chunks, decryptor: Decryptor) -> Iterator[bytes]:
    for chunk in chunks:
        yield from decryptor.feed(chunk)
    yield from decryptor.close()


class BackupStream:
    """Iterate to get the verified plaintext dump; :meth:`finish` must then pass."""

    def __init__(self, contract: Contract, side: str, manifest: Manifest, bar=None):
        self.manifest = manifest
        key = envelope.unwrap(contract, side, manifest.wrapped_keys, manifest.id, manifest.database)
        self.stored, self.dump = Digest(), Digest()
        decryptor = Decryptor(manifest.id, lambda header: key)
        raw = download(contract, side, manifest)
        if bar is not None:
            raw = bar.tap(raw)
        self._plain = Reader(threaded(_decrypt(self.stored.tap(raw), decryptor), name="decrypt"))
        self._zstd = zstandard.ZstdDecompressor().stream_reader(self._plain, read_size=READ_SIZE, closefd=False)

    def __iter__(self) -> Iterator[bytes]:
        return self.dump.tap(threaded(read_chunks(self._zstd), name="zstd-d"))

    def finish(self) -> None:
        """After the last chunk: nothing trailing, final frame authenticated, both SHA-256 match."""
        if self._plain.read(1):
            raise IntegrityError(f"backup {self.manifest.id}: data after the end of the compressed dump")
        m = self.manifest
        if self.stored.size != m.stored_bytes or self.stored.hexdigest() != m.stored_sha256:
            raise IntegrityError(f"backup {m.id}: SHA-256 of the stored object does not match the manifest")
        if self.dump.hexdigest() != m.dump_sha256:
            raise IntegrityError(f"backup {m.id}: SHA-256 of the decrypted dump does not match the manifest")

    def close(self) -> None:
        self._plain.close()


def check_stream(contract: Contract, side: str, manifest: Manifest, bar=None) -> int:
    """Download, authenticate and hash the whole backup without restoring it; returns dump bytes."""
    stream = BackupStream(contract, side, manifest, bar)
    try:
        for _ in stream:
            pass
        stream.finish()
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"backup {manifest.id}: compressed dump is corrupt ({exc})") from None
    finally:
        stream.close()
    return stream.dump.size


def read_globals(contract: Contract, side: str, manifest: Manifest) -> Globals | None:
    """The backup's sealed database statements and roles, checked and decrypted (None: an older backup)."""
    plain = read_sealed(contract, side, manifest, "globals", "its roles and database properties")
    if plain is None:
        return None
    try:
        return Globals.from_doc(json.loads(plain))
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"backup {manifest.id}: its roles and database properties are not readable") from None


def read_post_data(contract: Contract, side: str, manifest: Manifest) -> bytes | None:
    """The backup's sealed post-data archive, checked and decrypted (None: a backup made before it was kept)."""
    return read_sealed(contract, side, manifest, "postData", "its post-data archive")


def read_sealed(contract: Contract, side: str, manifest: Manifest, field: str, what: str) -> bytes | None:
    """A small sealed object of the backup (manifest entry ``field``), checked and decrypted.

    Small, so read whole: SHA-256 against the manifest, then the same authenticated decryption
    as the dump, with the data key wrapped for this object, then the plaintext's SHA-256.
    """
    entry = manifest.doc.get(field)
    if not entry:
        return None
    s3 = aws.client(contract, "s3", side)
    bucket = contract.buckets[side].bucket
    extra = {"VersionId": entry["versionId"]} if side == "primary" and entry.get("versionId") else {}
    try:
        body = s3.get_object(Bucket=bucket, Key=entry["key"], **extra)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise IntegrityError(f"backup {manifest.id}: {what} is missing from s3://{bucket} "
                                 "(not replicated yet?)") from None
        raise aws_error(exc, f"cannot read s3://{bucket}/{entry['key']}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, f"cannot read s3://{bucket}/{entry['key']}") from None
    if hashlib.sha256(body).hexdigest() != entry["sha256"]:
        raise IntegrityError(f"backup {manifest.id}: SHA-256 of {what} does not match the manifest")
    key = envelope.unwrap(contract, side, entry["wrappedKeys"], manifest.id, manifest.database)
    decryptor = Decryptor(manifest.id, lambda header: key)
    plain = b"".join([*decryptor.feed(body), *decryptor.close()])
    if "plainSha256" in entry and hashlib.sha256(plain).hexdigest() != entry["plainSha256"]:
        raise IntegrityError(f"backup {manifest.id}: SHA-256 of {what}, decrypted, does not match the manifest")
    return plain
