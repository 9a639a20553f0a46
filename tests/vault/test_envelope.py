"""The STREAM envelope without services: round trip, and every tampering it must reject."""
from __future__ import annotations

import os

import pytest

from scripts.vault.envelope import CHUNK_SIZE, DataKey, Decryptor, IntegrityError, encrypt_stream, make_header
from scripts.vault.layout import BACKUP_ID_RE, validate_backup_id
from scripts.common import UsageError

ID_A = "orders-20261124T093000000000Z-aaaaaa"
ID_B = "orders-20261124T103000000000Z-bbbbbb"
SMALL = 64


def seal(backup_id: str, data: bytes, key: bytes, chunk: int = SMALL) -> bytes:
    dk = DataKey(key, {"primary": "x", "dr": "y"}, {"primary": "arn:p", "dr": "arn:d"}, {"k": "v"})
    return b"".join(encrypt_stream([data[i:i + 10] for i in range(0, len(data), 10)] or [b""], key,
                                   make_header(dk, backup_id, "orders", chunk)))


def open_(backup_id: str, blob: bytes, key: bytes, piece: int = 7) -> bytes:
    dec = Decryptor(backup_id, lambda header: key)
    out = b"".join(b"".join(dec.feed(blob[i:i + piece])) for i in range(0, len(blob), piece))
    return out + b"".join(dec.close())


def frames(blob: bytes) -> tuple[bytes, list[bytes]]:
    head_len = 7 + 4 + int.from_bytes(blob[7:11], "big")
    body = blob[head_len:]
    return blob[:head_len], [body[i:i + SMALL + 16] for i in range(0, len(body), SMALL + 16)]


@pytest.mark.parametrize("size", [0, 1, SMALL - 1, SMALL, SMALL + 1, 5 * SMALL, 5 * SMALL + 3])
def test_round_trip_any_length(size):
    key, data = os.urandom(32), os.urandom(size)
    assert open_(ID_A, seal(ID_A, data, key), key) == data


def test_default_chunk_size_is_a_mebibyte():
    assert CHUNK_SIZE == 1 << 20


def test_truncation_at_a_frame_boundary_is_rejected():
    key = os.urandom(32)
    head, fs = frames(seal(ID_A, os.urandom(5 * SMALL + 3), key))
    with pytest.raises(IntegrityError, match="final"):
        open_(ID_A, head + b"".join(fs[:3]), key)


def test_reordered_frames_are_rejected():
    key = os.urandom(32)
    head, fs = frames(seal(ID_A, os.urandom(5 * SMALL + 3), key))
    with pytest.raises(IntegrityError, match="chunk 1"):
        open_(ID_A, head + fs[0] + fs[2] + fs[1] + b"".join(fs[3:]), key)


def test_flipped_bit_is_rejected():
    key = os.urandom(32)
    blob = bytearray(seal(ID_A, os.urandom(3 * SMALL), key))
    blob[-40] ^= 1
    with pytest.raises(IntegrityError):
        open_(ID_A, bytes(blob), key)


def test_object_of_another_backup_is_rejected_even_with_its_key():
    key = os.urandom(32)
    with pytest.raises(IntegrityError, match="another backup"):
        open_(ID_B, seal(ID_A, os.urandom(100), key), key)


def test_frames_spliced_from_another_backup_are_rejected():
    key = os.urandom(32)  # same key on purpose: only the AAD/nonce binding stops this
    head_a, fa = frames(seal(ID_A, os.urandom(3 * SMALL), key))
    _, fb = frames(seal(ID_B, os.urandom(3 * SMALL), key))
    with pytest.raises(IntegrityError):
        open_(ID_A, head_a + fa[0] + fb[1] + fa[2], key)


def test_trailing_data_after_final_frame_is_rejected():
    key = os.urandom(32)
    blob = seal(ID_A, os.urandom(SMALL // 2), key)
    with pytest.raises(IntegrityError):
        open_(ID_A, blob + b"x" * 5, key)


def test_not_a_backup_is_rejected():
    with pytest.raises(IntegrityError, match="magic"):
        open_(ID_A, b"PGDMP" + os.urandom(100), os.urandom(32))


def test_data_key_never_in_repr():
    key = os.urandom(32)
    dk = DataKey(key, {}, {}, {})
    assert key.hex() not in repr(dk) and repr(key) not in repr(dk)


@pytest.mark.parametrize("bad", ["../etc", "orders/../x", "orders-20261124T093000000000Z-aaaaa",
                                 "orders-20261124T093000000000Z-aaaaaa/", "", "orders-2026-aaaaaa"])
def test_backup_id_validation(bad):
    assert not BACKUP_ID_RE.fullmatch(bad)
    with pytest.raises(UsageError):
        validate_backup_id(bad)
