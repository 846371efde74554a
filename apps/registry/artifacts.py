"""Safe extraction of an uploaded model artifact (.zip or .tar.gz of a ``save_pretrained`` folder).

Everything in an upload is hostile until checked: entry names, entry types, declared and actual sizes, the weight
format. All entries are checked before the first byte is written, sizes are counted again while writing, and any
failure removes everything written, so a refused artifact leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from safetensors import SafetensorError, safe_open

CHUNK_BYTES = 1024 * 1024
MIB = 1024 * 1024
SAFE_WEIGHT_SUFFIXES = frozenset({".safetensors"})
# These formats are Python pickles: unpickling runs whatever code the file names.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib"})
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b"
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# Finder adds resource forks under __MACOSX/ to every zip it makes; they are never part of the model.
_IGNORED_TOP_LEVEL = "__MACOSX"
_ZIP_ENCRYPTED = 0x1
# (name, kind, declared size, opener) of one archive entry; kind is file, dir, symlink, hardlink, special, encrypted.
_RawEntry = tuple[str, str, int, Callable[[], BinaryIO]]


class ArtifactError(ValueError):
    """The artifact is refused; ``status`` is 413 when a size or count limit is exceeded, 400 otherwise."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class ExtractedArtifact:
    root: Path
    files: list[str]
    total_bytes: int
    sha256: str
    size: int
    weight_files: list[str]
    has_pickle_weights: bool


@dataclass
class _Entry:
    parts: tuple[str, ...]
    declared_size: int
    open: Callable[[], BinaryIO]

    @property
    def name(self) -> str:
        return "/".join(self.parts)


def artifact_extract(
    source: BinaryIO,
    destination: Path,
    *,
    max_bytes: int,
    max_files: int,
    max_uncompressed_bytes: int,
    allow_pickle: bool,
    expected_sha256: str = "",
) -> ExtractedArtifact:
    """Check the archive in ``source`` (seekable, e.g. a Django UploadedFile) and extract it into ``destination``.

    With ``expected_sha256``, an archive whose SHA-256 differs is refused before anything is written.
    ``destination`` must not exist or be empty. A single top-level folder holding config.json is unwrapped, so
    ``destination`` always becomes the model folder (``root``). Raises ArtifactError, leaving ``destination``
    absent or empty, when the archive is unsafe, malformed or over a limit.
    """
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise ValueError(f"{destination} is not empty; extract every artifact into a folder of its own.")
    sha256, size = _archive_digest(source, max_bytes)
    if expected_sha256 and sha256 != expected_sha256:
        raise ArtifactError(
            f"The archive's SHA-256 is {sha256}, not the {expected_sha256} recorded when it was uploaded: "
            "it was changed or damaged in storage."
        )
    source.seek(0)
    created = not destination.exists()
    try:
        with _open_entries(source) as entries:
            files = _checked_files(entries, max_files, max_uncompressed_bytes)
            root_parts = _root_parts(files)
            files = [_Entry(entry.parts[len(root_parts) :], entry.declared_size, entry.open) for entry in files]
            weight_files, pickle_files = _weight_policy(files, allow_pickle)
            destination.mkdir(parents=True, exist_ok=True)
            total_bytes = _write_files(files, destination.resolve(), max_uncompressed_bytes)
        _check_contents(destination, weight_files)
    except BaseException:
        _remove_written(destination, created)
        raise
    return ExtractedArtifact(
        root=destination,
        files=sorted(entry.name for entry in files),
        total_bytes=total_bytes,
        sha256=sha256,
        size=size,
        weight_files=weight_files,
        has_pickle_weights=bool(pickle_files),
    )


def _archive_digest(source: BinaryIO, max_bytes: int) -> tuple[str, int]:
    source.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise ArtifactError(
                f"The archive is larger than {_size(max_bytes)}, the upload limit.",
                status=413,
            )
        digest.update(chunk)
    if size == 0:
        raise ArtifactError("The archive is empty (0 bytes).")
    return digest.hexdigest(), size


@contextmanager
def _open_entries(source: BinaryIO) -> Iterator[Iterable[_RawEntry]]:
    """The archive's entries in archive order, which is also the cheapest order to read a tar.gz in."""
    magic = source.read(4)
    source.seek(0)
    if magic in ZIP_MAGIC:
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise ArtifactError(f"The zip archive is corrupted ({exc}).") from None
        with archive:
            yield [_zip_entry(archive, info) for info in archive.infolist()]
    elif magic.startswith(GZIP_MAGIC):
        with _open_tar_gz(source) as archive:
            yield _tar_entries(archive)
    else:
        raise ArtifactError("The upload is not a .zip or .tar.gz archive.")


def _open_tar_gz(source: BinaryIO) -> tarfile.TarFile:
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as stream:
            first = stream.read(1)
        source.seek(0)
        if not first:
            raise ArtifactError("The archive is empty.")
        return tarfile.open(fileobj=source, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArtifactError(f"The .tar.gz archive is corrupted or is not a tar inside gzip ({exc}).") from None


def _zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _RawEntry:
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode):
        kind = "dir"
    elif stat.S_ISLNK(mode):
        kind = "symlink"
    elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        kind = "special"
    elif info.flag_bits & _ZIP_ENCRYPTED:
        kind = "encrypted"
    else:
        kind = "file"
    return info.filename, kind, info.file_size, lambda: archive.open(info)


def _tar_entries(archive: tarfile.TarFile) -> Iterator[_RawEntry]:
    """Lazy, so that a huge declared size stops the scan before the gzip stream is decompressed past it."""
    try:
        while (member := archive.next()) is not None:
            if member.isdir():
                kind = "dir"
            elif member.issym():
                kind = "symlink"
            elif member.islnk():
                kind = "hardlink"
            elif member.isreg():
                kind = "file"
            else:
                kind = "special"
            yield member.name, kind, member.size, lambda member=member: archive.extractfile(member)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArtifactError(f"The .tar.gz archive is corrupted ({exc}).") from None


_KIND_PROBLEMS = {
    "symlink": "is a symbolic link; links are not allowed in a model artifact",
    "hardlink": "is a hard link; links are not allowed in a model artifact",
    "special": "is a device file, FIFO or socket; only regular files and folders are allowed",
    "encrypted": "is encrypted; upload an archive without a password",
}


def _checked_files(entries: Iterable[_RawEntry], max_files: int, max_uncompressed_bytes: int) -> list[_Entry]:
    """Every entry's name, type and declared size checked; the regular files returned, nothing written yet."""
    files: list[_Entry] = []
    seen: set[tuple[str, ...]] = set()
    declared_total = 0
    for count, (name, kind, declared_size, opener) in enumerate(entries, start=1):
        # Folders count too: an archive of a million empty folders is as much a bomb as one of files.
        if count > max_files:
            raise ArtifactError(f"The archive holds more than {max_files:,} files and folders, the limit.", status=413)
        parts = _safe_parts(name)
        if kind in _KIND_PROBLEMS:
            raise ArtifactError(f"Entry {name!r} {_KIND_PROBLEMS[kind]}.")
        if not parts or parts[0] == _IGNORED_TOP_LEVEL or kind == "dir":
            continue
        if parts in seen:
            raise ArtifactError(f"Entry {name!r} appears twice in the archive.")
        seen.add(parts)
        declared_total += declared_size
        if declared_total > max_uncompressed_bytes:
            raise ArtifactError(_uncompressed_limit_message(max_uncompressed_bytes), status=413)
        files.append(_Entry(parts, declared_size, opener))
    if not files:
        raise ArtifactError("The archive is empty: it holds no files.")
    for entry in files:
        for depth in range(1, len(entry.parts)):
            if entry.parts[:depth] in seen:
                raise ArtifactError(f"Entry {entry.name!r} lies inside {'/'.join(entry.parts[:depth])!r}, a file.")
    return files


def _safe_parts(name: str) -> tuple[str, ...]:
    if "\x00" in name or "\\" in name:
        raise ArtifactError(f"Entry {name!r} contains a backslash or NUL character; use plain relative paths.")
    path = PurePosixPath(name)
    if path.is_absolute() or _WINDOWS_DRIVE.match(name):
        raise ArtifactError(f"Entry {name!r} has an absolute path; archive entries must be relative.")
    if ".." in path.parts:
        raise ArtifactError(f"Entry {name!r} contains a '..' component; entries must stay inside the model folder.")
    return path.parts


def _root_parts(files: list[_Entry]) -> tuple[str, ...]:
    names = {entry.parts for entry in files}
    if ("config.json",) in names:
        return ()
    tops = {entry.parts[0] for entry in files}
    if len(tops) == 1 and (*tops, "config.json") in names:
        return tuple(tops)
    raise ArtifactError(
        "The archive has no config.json at its top level or inside a single top-level folder; "
        "upload the folder written by save_pretrained()."
    )


def _weight_policy(files: list[_Entry], allow_pickle: bool) -> tuple[list[str], list[str]]:
    """(weight files, pickle files) by name; refuses pickle unless allowed and an artifact without weights."""
    suffixes = {entry.name: PurePosixPath(entry.name).suffix.lower() for entry in files}
    pickle_files = sorted(name for name, suffix in suffixes.items() if suffix in PICKLE_SUFFIXES)
    if pickle_files and not allow_pickle:
        raise ArtifactError(
            f"Pickle files are not accepted: {', '.join(pickle_files)}. Pickle runs code when it is loaded; "
            "save the weights as safetensors (save_pretrained(..., safe_serialization=True)) or ask an "
            "administrator to allow pickle files in the registry."
        )
    safe_files = sorted(name for name, suffix in suffixes.items() if suffix in SAFE_WEIGHT_SUFFIXES)
    if not safe_files and not pickle_files:
        raise ArtifactError("The archive holds no model weights: expected model.safetensors (*.safetensors).")
    return sorted(safe_files + pickle_files), pickle_files


def _write_files(files: list[_Entry], root: Path, max_uncompressed_bytes: int) -> int:
    total = 0
    for entry in files:
        target = root.joinpath(*entry.parts).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ArtifactError(f"Entry {entry.name!r} would be written outside the model folder.")
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            with entry.open() as stream, target.open("xb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    written += len(chunk)
                    total += len(chunk)
                    # Declared sizes are the uploader's word; the bytes that really come out are what count.
                    if total > max_uncompressed_bytes:
                        raise ArtifactError(_uncompressed_limit_message(max_uncompressed_bytes), status=413)
                    if written > entry.declared_size:
                        raise ArtifactError(f"Entry {entry.name!r} holds more bytes than its declared size.")
                    out.write(chunk)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ArtifactError(f"The archive is corrupted at entry {entry.name!r} ({exc}).") from None
        except NotImplementedError as exc:
            raise ArtifactError(f"Entry {entry.name!r} uses an unsupported compression method ({exc}).") from None
    return total


def _check_contents(root: Path, weight_files: list[str]) -> None:
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"config.json is not valid JSON ({exc}).") from None
    if not isinstance(config, dict):
        raise ArtifactError("config.json must hold a JSON object.")
    for name in weight_files:
        if name.lower().endswith(".safetensors"):
            _check_safetensors(root / name, name)


def _check_safetensors(path: Path, name: str) -> None:
    """The header parses and every tensor's offsets lie within the file (safe_open checks both, lazily)."""
    try:
        with safe_open(str(path), framework="pt") as weights:
            weights.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{name} is not a valid safetensors file ({exc}); it may be truncated.") from None


def _remove_written(destination: Path, created: bool) -> None:
    if created:
        shutil.rmtree(destination, ignore_errors=True)
    elif destination.exists():
        for child in destination.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _uncompressed_limit_message(limit: int) -> str:
    return f"The archive unpacks to more than {_size(limit)}, the limit for its contents."


def _size(count: int) -> str:
    if count >= MIB and count % MIB == 0:
        return f"{count // MIB:,} MB"
    return f"{count:,} bytes"
