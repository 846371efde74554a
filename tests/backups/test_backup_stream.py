"""The encrypted backup file format: round trips, tamper and truncation detection, keys."""

import base64
import hashlib
import io
import itertools
import struct
import zlib

import pytest

from apps.backups.keys import BackupKeyError, backup_key, generate_key, key_id, parse_key
from apps.backups.stream import (
    HEADER_SIZE,
    MAGIC,
    PIECE_SIZE,
    BackupFormatError,
    EncryptingWriter,
    decrypt_chunks,
    read_header,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
CHUNK = 64 * 1024
SMALL_CHUNK = 1024
COMPRESSIONS = ["zstd", "gzip", "none"]
# Frame header (flag, length, CRC) plus the GCM tag around each chunk's payload.
FRAME_OVERHEAD = 9 + 16


def noise(size: int, seed: bytes = b"noise") -> bytes:
    """Reproducible incompressible bytes."""
    return hashlib.shake_256(seed).digest(size)


def sample(size: int) -> bytes:
    """Half incompressible bytes, half pg_dump-like COPY text, so compressors do real work both ways."""
    rows = (
        f"{row}\t2024-05-{row % 28 + 1:02d} 12:00:00+00\tjob.submit\t{row * 7919 % 104729}\n" for row in range(size)
    )
    text = "".join(itertools.islice(rows, size // 40 + 1)).encode()[: size // 2]
    return noise(size - len(text)) + text


def encrypt(data: bytes, *, key: bytes = KEY, compression: str = "zstd", chunk_size: int = CHUNK, piece: int = 7919):
    out = io.BytesIO()
    writer = EncryptingWriter(out, key=key, compression=compression, chunk_size=chunk_size)
    for start in range(0, len(data), piece):
        writer.write(data[start : start + piece])
    writer.close()
    return out.getvalue(), writer


def decrypt(blob: bytes, *, key: bytes = KEY) -> bytes:
    return b"".join(decrypt_chunks(io.BytesIO(blob), key=key))


def failure(blob: bytes, *, key: bytes = KEY) -> BackupFormatError:
    with pytest.raises(BackupFormatError) as caught:
        decrypt(blob, key=key)
    return caught.value


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * 1024 * 1024])
def test_round_trip_returns_exactly_what_was_written(compression, size):
    data = sample(size)

    blob, _writer = encrypt(data, compression=compression)

    assert decrypt(blob) == data


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_of_one_large_write(compression):
    data = sample(3 * CHUNK + 5)

    blob, _writer = encrypt(data, compression=compression, piece=len(data))

    assert decrypt(blob) == data


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_counters_and_sha256_describe_the_output(compression):
    data = sample(5 * 1024 * 1024)

    blob, writer = encrypt(data, compression=compression)

    assert writer.sha256 == hashlib.sha256(blob).hexdigest()
    assert writer.bytes_out == len(blob)
    assert writer.bytes_in == len(data)


def test_compression_shrinks_text_and_none_stores_it_as_is():
    text = sample(1024 * 1024)[512 * 1024 :]

    sizes = {compression: len(encrypt(text, compression=compression)[0]) for compression in COMPRESSIONS}

    assert sizes["zstd"] < len(text) / 2
    assert sizes["gzip"] < len(text) / 2
    chunks = -(-len(text) // CHUNK)
    assert sizes["none"] == HEADER_SIZE + len(text) + chunks * FRAME_OVERHEAD


def test_ciphertext_does_not_contain_the_plaintext_and_differs_each_time():
    data = b"secret row 42\n" * 1000

    first, _ = encrypt(data, compression="none")
    second, _ = encrypt(data, compression="none")

    assert b"secret row" not in first
    assert first[HEADER_SIZE:] != second[HEADER_SIZE:]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_decompressed_pieces_stay_small_however_well_the_data_compresses(compression):
    zeros = bytes(1024 * 1024)
    out = io.BytesIO()
    writer = EncryptingWriter(out, key=KEY, compression=compression)
    for _ in range(24):
        writer.write(zeros)
    writer.close()
    out.seek(0)

    pieces = [len(piece) for piece in decrypt_chunks(out, key=KEY)]

    assert sum(pieces) == 24 * len(zeros)
    assert max(pieces) <= PIECE_SIZE


def test_read_header_gives_the_public_facts_and_reads_only_the_header():
    blob, _ = encrypt(sample(1000), compression="gzip", chunk_size=SMALL_CHUNK)
    source = io.BytesIO(blob)

    header = read_header(source)

    assert header == {"format_version": 1, "key_id": key_id(KEY), "compression": "gzip", "chunk_size": SMALL_CHUNK}
    assert source.tell() == HEADER_SIZE


def test_output_starts_with_the_magic():
    blob, _ = encrypt(b"")

    assert blob.startswith(MAGIC + b"\x01")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_flipping_any_single_byte_is_detected_with_the_right_reason(compression):
    # Three chunks of a small chunk size keep the exhaustive loop fast while covering every part of the layout.
    blob, _ = encrypt(noise(2 * SMALL_CHUNK + 500, b"flip"), compression=compression, chunk_size=SMALL_CHUNK)
    magic_and_version = len(MAGIC) + 1

    reasons = {}
    for position in range(len(blob)):
        damaged = bytearray(blob)
        damaged[position] ^= 0x01
        reasons[position] = failure(bytes(damaged)).reason

    assert {reasons[position] for position in range(magic_and_version)} == {"not_a_backup"}
    assert {reasons[position] for position in range(magic_and_version, len(blob))} == {"corrupted"}


def test_corrupted_chunk_is_named_in_the_message():
    blob, _ = encrypt(bytes(3 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)
    second_chunk_body = HEADER_SIZE + (SMALL_CHUNK + FRAME_OVERHEAD) + 9 + 100
    damaged = bytearray(blob)
    damaged[second_chunk_body] ^= 0xFF

    error = failure(bytes(damaged))

    assert error.reason == "corrupted"
    assert str(error) == "Chunk 2 failed authentication: the file is corrupted."


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_cutting_the_file_anywhere_is_reported_as_truncated(compression):
    blob, _ = encrypt(noise(2 * SMALL_CHUNK + 500, b"cut"), compression=compression, chunk_size=SMALL_CHUNK)

    reasons = {failure(blob[:end]).reason for end in range(len(blob))}

    assert reasons == {"truncated"}


def test_truncation_at_a_chunk_boundary_names_the_last_complete_chunk():
    blob, _ = encrypt(bytes(3 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)
    after_two_chunks = HEADER_SIZE + 2 * (SMALL_CHUNK + FRAME_OVERHEAD)

    error = failure(blob[:after_two_chunks])

    assert str(error) == "The file ends after chunk 2 without its final chunk: it was truncated."


def test_empty_file_is_reported_as_truncated():
    assert failure(b"").reason == "truncated"


def test_data_after_the_final_chunk_is_corruption():
    blob, _ = encrypt(sample(5000), chunk_size=SMALL_CHUNK)

    assert failure(blob + b"\x00").reason == "corrupted"


def split_chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Header and chunks of an uncompressed backup whose plaintext is a multiple of SMALL_CHUNK."""
    body = blob[HEADER_SIZE:]
    step = SMALL_CHUNK + FRAME_OVERHEAD
    return blob[:HEADER_SIZE], [body[start : start + step] for start in range(0, len(body), step)]


def test_swapping_two_chunks_is_corruption():
    header, chunks = split_chunks(encrypt(sample(4 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)[0])
    chunks[1], chunks[2] = chunks[2], chunks[1]

    error = failure(header + b"".join(chunks))

    assert error.reason == "corrupted"
    assert str(error) == "Chunk 2 failed authentication: the file is corrupted."


def test_dropping_a_middle_chunk_is_corruption():
    header, chunks = split_chunks(encrypt(sample(4 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)[0])
    del chunks[1]

    assert failure(header + b"".join(chunks)).reason == "corrupted"


def test_chunks_under_another_backups_header_are_corruption():
    first_header, _ = split_chunks(encrypt(sample(4 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)[0])
    _, second_chunks = split_chunks(encrypt(sample(4 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)[0])

    assert failure(first_header + b"".join(second_chunks)).reason == "corrupted"


def with_crc(data: bytes) -> bytes:
    """What someone rewriting the file would do to make damaged parts look intact."""
    return data + struct.pack(">I", zlib.crc32(data))


def test_truncated_file_with_a_forged_final_flag_is_corruption():
    header, chunks = split_chunks(encrypt(sample(4 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)[0])
    cut_after_two = chunks[:2]
    cut_after_two[1] = with_crc(struct.pack(">BI", 1, SMALL_CHUNK + 16)) + cut_after_two[1][9:]

    error = failure(header + b"".join(cut_after_two))

    assert error.reason == "corrupted"
    assert str(error) == "Chunk 2 failed authentication: the file is corrupted."


def test_header_with_a_forged_compression_is_corruption():
    blob, _ = encrypt(sample(4 * SMALL_CHUNK), compression="none", chunk_size=SMALL_CHUNK)
    compression_at = len(MAGIC) + 1 + 8
    forged = bytearray(blob[: HEADER_SIZE - 4])
    forged[compression_at] = 1  # gzip

    error = failure(with_crc(bytes(forged)) + blob[HEADER_SIZE:])

    assert error.reason == "corrupted"
    assert str(error) == "Chunk 1 failed authentication: the file is corrupted."


def test_wrong_key_is_refused_before_any_plaintext_is_produced():
    blob, _ = encrypt(sample(3 * CHUNK), key=KEY)

    with pytest.raises(BackupFormatError) as caught:
        decrypt_chunks(io.BytesIO(blob), key=OTHER_KEY)

    assert caught.value.reason == "wrong_key"
    assert str(caught.value) == (
        f"The file was encrypted with key {key_id(KEY)} but the configured key is {key_id(OTHER_KEY)}."
    )
    assert KEY.hex() not in str(caught.value)
    assert OTHER_KEY.hex() not in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [b"PGDMP\x01\x0e\x00" + bytes(200), b"\x1f\x8b\x08" + bytes(200), b"OPSDECK-BACKUX" + bytes(200)],
    ids=["pg_dump", "gzip", "near-magic"],
)
def test_other_files_are_not_backups(content):
    error = failure(content)

    assert error.reason == "not_a_backup"
    assert "not an Opsdeck backup" in str(error)


def test_a_newer_format_version_is_not_read_as_this_one():
    blob, _ = encrypt(b"data")
    newer = MAGIC + b"\x02" + blob[len(MAGIC) + 1 :]

    error = failure(newer)

    assert error.reason == "not_a_backup"
    assert "format version 2" in str(error)


def test_writer_left_through_an_exception_leaves_a_truncated_file():
    out = io.BytesIO()

    def dump_failing_half_way():
        with EncryptingWriter(out, key=KEY, chunk_size=SMALL_CHUNK) as writer:
            writer.write(sample(10 * SMALL_CHUNK))
            raise RuntimeError("pg_dump failed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        dump_failing_half_way()

    assert failure(out.getvalue()).reason == "truncated"


def test_writer_refuses_writes_after_close():
    writer = EncryptingWriter(io.BytesIO(), key=KEY)
    writer.close()

    with pytest.raises(ValueError, match="closed"):
        writer.write(b"late")


def test_writer_rejects_an_unknown_compression():
    with pytest.raises(ValueError, match="zstd"):
        EncryptingWriter(io.BytesIO(), key=KEY, compression="lz4")


# Keys


def test_hex_key_is_accepted_in_either_case_and_with_surrounding_whitespace():
    assert parse_key(KEY.hex()) == KEY
    assert parse_key(f"  {KEY.hex().upper()}\n") == KEY


def test_base64_key_is_accepted_standard_and_urlsafe_with_or_without_padding():
    key = bytes([250, 251, 252, 253] * 8)  # encodes with the characters that differ between the two alphabets

    assert parse_key(base64.b64encode(key).decode()) == key
    assert parse_key(base64.urlsafe_b64encode(key).decode()) == key
    assert parse_key(base64.urlsafe_b64encode(key).decode().rstrip("=")) == key


@pytest.mark.parametrize(
    "value",
    [
        KEY.hex()[:-2],
        KEY.hex() + "00",
        base64.b64encode(bytes(range(16))).decode(),
        base64.b64encode(bytes(range(48))).decode(),
        "correct horse battery staple",
        "zz" * 32,
    ],
    ids=["hex-too-short", "hex-too-long", "base64-16-bytes", "base64-48-bytes", "passphrase", "not-hex-or-base64"],
)
def test_malformed_key_error_names_the_setting_and_form_without_echoing_the_value(value):
    with pytest.raises(BackupKeyError) as caught:
        parse_key(value)

    message = str(caught.value)
    assert "BACKUP_ENCRYPTION_KEY" in message
    assert "64 hexadecimal characters" in message
    assert value not in message


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_key_says_how_to_configure_one(value):
    with pytest.raises(
        BackupKeyError, match="No backup key configured: set BACKUP_ENCRYPTION_KEY or BACKUP_ENCRYPTION_KEY_FILE"
    ):
        parse_key(value)


def test_backup_key_reads_the_setting(settings):
    settings.BACKUP_ENCRYPTION_KEY = base64.b64encode(KEY).decode()

    assert backup_key() == KEY


def test_backup_key_without_a_setting_is_a_configuration_error(settings):
    settings.BACKUP_ENCRYPTION_KEY = ""

    with pytest.raises(BackupKeyError, match="No backup key configured"):
        backup_key()


def test_key_id_is_a_short_stable_fingerprint_that_reveals_nothing_of_the_key():
    fingerprint = key_id(KEY)

    assert fingerprint == key_id(bytes(KEY))
    assert len(fingerprint) == 16
    assert int(fingerprint, 16) >= 0
    assert fingerprint != key_id(OTHER_KEY)
    assert fingerprint not in KEY.hex()
    assert fingerprint != hashlib.sha256(KEY).hexdigest()[:16]


def test_generated_keys_are_fresh_and_accepted_by_the_setting():
    first, second = generate_key(), generate_key()

    assert first != second
    assert len(parse_key(first)) == 32
