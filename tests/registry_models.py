"""Tiny transformers models built on the spot (nothing is downloaded) and the archives, good and bad, that carry them.

Building a model takes well under 0.1 s here, so tests build their own instead of sharing one across the session.
"""

import gzip
import io
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, PreTrainedTokenizerFast

MIB = 1024 * 1024
SENTENCES = (
    "the service is great and fast",
    "this release is terrible and slow",
    "i love the new dashboard",
    "the queue is stuck again",
    "predictions look fine today",
    "nothing works after the upgrade",
    "operators are happy with the portal",
    "the model failed to load",
)
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MODEL_CARD = """# Tiny sentiment classifier

A two-layer BERT built by the test suite; its predictions mean nothing.

- labels: negative, positive
- weights: random, fixed seed

<script>alert(1)</script>
"""


def build_tiny_classifier(directory: Path, *, labels: Sequence[str] = ("negative", "positive")) -> Path:
    """A BertForSequenceClassification with a WordPiece tokenizer and a model card, saved as safetensors."""
    tokenizer = _tokenizer()
    config = _bert_config(
        tokenizer, id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
    )
    torch.manual_seed(0)
    directory = _save(directory, tokenizer, BertForSequenceClassification(config))
    (directory / "README.md").write_text(MODEL_CARD, encoding="utf-8")
    return directory


def build_tiny_fill_mask(directory: Path) -> Path:
    """A BertForMaskedLM: a sound model whose architecture does not fit text-classification."""
    tokenizer = _tokenizer()
    torch.manual_seed(0)
    return _save(directory, tokenizer, BertForMaskedLM(_bert_config(tokenizer)))


def _tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(
        SENTENCES, trainers.WordPieceTrainer(vocab_size=200, special_tokens=list(SPECIAL_TOKENS))
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def _bert_config(tokenizer: PreTrainedTokenizerFast, **labels) -> BertConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        **labels,
    )


def _save(directory: Path, tokenizer: PreTrainedTokenizerFast, model) -> Path:
    directory = Path(directory)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


# --- archives -------------------------------------------------------------------------------------------------------


def _model_files(folder: Path) -> list[tuple[str, Path]]:
    return [(path.relative_to(folder).as_posix(), path) for path in sorted(folder.rglob("*")) if path.is_file()]


def pack_zip(
    folder: Path, *, top_level_dir: str | None = None, extra: Sequence[tuple[str | zipfile.ZipInfo, bytes]] = ()
) -> bytes:
    """The folder as a .zip (optionally inside ``top_level_dir/``), plus ``extra`` entries written verbatim."""
    prefix = f"{top_level_dir}/" if top_level_dir else ""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if prefix:
            archive.writestr(prefix, b"")
        for name, path in _model_files(folder):
            archive.write(path, prefix + name)
        for entry, data in extra:
            archive.writestr(entry, data)
    return buffer.getvalue()


def pack_tar_gz(
    folder: Path, *, top_level_dir: str | None = None, extra: Sequence[tuple[tarfile.TarInfo, bytes]] = ()
) -> bytes:
    """The folder as a .tar.gz (optionally inside ``top_level_dir/``), plus ``extra`` members written verbatim."""
    prefix = f"{top_level_dir}/" if top_level_dir else ""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, path in _model_files(folder):
            archive.add(path, prefix + name)
        for member, data in extra:
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _tar_member(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, linkname
    return member, b""


def _zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    entry = zipfile.ZipInfo(name)
    entry.external_attr = (stat.S_IFLNK | 0o777) << 16
    return entry, target.encode()


def empty_zip() -> bytes:
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    return buffer.getvalue()


def empty_tar_gz() -> bytes:
    buffer = io.BytesIO()
    tarfile.open(fileobj=buffer, mode="w:gz").close()
    return buffer.getvalue()


def _changed_zip(folder: Path, change: Callable[[Path], None]) -> bytes:
    """A zip of a copy of ``folder`` after ``change`` (the original folder stays intact)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(shutil.copytree(folder, Path(scratch) / "model"))
        change(copy)
        return pack_zip(copy)


def pickle_weights_zip(folder: Path) -> bytes:
    """The weights as pytorch_model.bin written by torch.save (a pickle), with no safetensors beside them."""

    def to_pickle(copy: Path) -> None:
        torch.save(load_file(copy / "model.safetensors"), copy / "pytorch_model.bin")
        (copy / "model.safetensors").unlink()

    return _changed_zip(folder, to_pickle)


def corrupted_safetensors_zip(folder: Path) -> bytes:
    """model.safetensors cut to half its length, as an interrupted copy leaves it."""

    def truncate(copy: Path) -> None:
        weights = copy / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    return _changed_zip(folder, truncate)


def no_config_zip(folder: Path) -> bytes:
    return _changed_zip(folder, lambda copy: (copy / "config.json").unlink())


def encrypted_zip(folder: Path) -> bytes:
    """config.json flagged as encrypted in the central directory (the stdlib cannot write real zip encryption)."""
    data = bytearray(pack_zip(folder))
    header = data.find(b"PK\x01\x02")
    while header != -1:
        (name_length,) = struct.unpack_from("<H", data, header + 28)
        if data[header + 46 : header + 46 + name_length] == b"config.json":
            data[header + 8] |= 0x1
        header = data.find(b"PK\x01\x02", header + 1)
    return bytes(data)


def zip_bomb(folder: Path, *, zeros: int = 100 * MIB, declared_size: int | None = None) -> bytes:
    """The model plus ``zeros.txt``: ``zeros`` zero bytes that deflate to about 1/1000 of that.

    With ``declared_size`` the zip headers lie about the entry's uncompressed size, as bombs do to slip past
    checks of declared sizes.
    """
    contents = [(name, path.read_bytes()) for name, path in _model_files(folder)] + [("zeros.txt", bytes(zeros))]
    entries = [(name, _deflate(data), zlib.crc32(data), len(data)) for name, data in contents]
    if declared_size is not None:
        entries[-1] = (*entries[-1][:3], declared_size)
    return _handmade_zip(entries)


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _handmade_zip(entries: Sequence[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of (name, raw deflate data, crc32, declared uncompressed size) entries, sizes exactly as given."""
    body, central = bytearray(), bytearray()
    for name, data, crc, declared in entries:
        encoded, offset = name.encode(), len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), declared, len(encoded), 0)
        body += encoded + data
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), declared, len(encoded), 0, 0, 0, 0,
            0o644 << 16, offset,
        )  # fmt: skip
        central += encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return bytes(body + central + end)


@dataclass(frozen=True)
class BadArtifact:
    """An archive every upload path must refuse with ``status`` and a message holding all of ``keywords``."""

    name: str
    build: Callable[[Path], bytes]
    status: int
    keywords: tuple[str, ...]


BAD_ARTIFACTS = (
    BadArtifact(
        "path traversal (zip)", lambda f: pack_zip(f, extra=[("../evil.txt", b"evil")]), 400, ("'..'", "component")
    ),
    BadArtifact(
        "path traversal inside a folder (tar.gz)",
        lambda f: pack_tar_gz(f, extra=[(tarfile.TarInfo("docs/../../evil.txt"), b"evil")]),
        400,
        ("'..'", "component"),
    ),
    BadArtifact("absolute path (zip)", lambda f: pack_zip(f, extra=[("/etc/cron.d/x", b"evil")]), 400, ("absolute",)),
    BadArtifact(
        "absolute path (tar.gz)",
        lambda f: pack_tar_gz(f, extra=[(tarfile.TarInfo("/etc/cron.d/x"), b"evil")]),
        400,
        ("absolute",),
    ),
    BadArtifact(
        "symlink (zip)", lambda f: pack_zip(f, extra=[_zip_symlink("passwd", "/etc/passwd")]), 400, ("symbolic link",)
    ),
    BadArtifact(
        "symlink (tar.gz)",
        lambda f: pack_tar_gz(f, extra=[_tar_member("passwd", tarfile.SYMTYPE, "/etc/passwd")]),
        400,
        ("symbolic link",),
    ),
    BadArtifact(
        "hard link (tar.gz)",
        lambda f: pack_tar_gz(f, extra=[_tar_member("copy.json", tarfile.LNKTYPE, "config.json")]),
        400,
        ("hard link",),
    ),
    BadArtifact(
        "device file (tar.gz)",
        lambda f: pack_tar_gz(f, extra=[_tar_member("null", tarfile.CHRTYPE)]),
        400,
        ("device file",),
    ),
    BadArtifact(
        "fifo (tar.gz)", lambda f: pack_tar_gz(f, extra=[_tar_member("pipe", tarfile.FIFOTYPE)]), 400, ("fifo",)
    ),
    BadArtifact("pickle weights", pickle_weights_zip, 400, ("pytorch_model.bin", "pickle", "allow pickle files")),
    BadArtifact("zip bomb", zip_bomb, 413, ("unpacks to more than", "the limit for its contents")),
    BadArtifact(
        "zip bomb lying about its size",
        lambda f: zip_bomb(f, declared_size=1000),
        400,
        ("zeros.txt", "corrupted"),
    ),
    BadArtifact(
        "corrupted safetensors", corrupted_safetensors_zip, 400, ("model.safetensors", "not a valid safetensors")
    ),
    BadArtifact("empty zip", lambda f: empty_zip(), 400, ("empty",)),
    BadArtifact("empty tar.gz", lambda f: empty_tar_gz(), 400, ("empty",)),
    BadArtifact("empty gzip", lambda f: gzip.compress(b""), 400, ("empty",)),
    BadArtifact("zero bytes", lambda f: b"", 400, ("empty",)),
    BadArtifact("no config.json", no_config_zip, 400, ("config.json", "save_pretrained")),
    BadArtifact(
        "config.json not JSON",
        lambda f: _changed_zip(f, lambda copy: (copy / "config.json").write_text("{not json")),
        400,
        ("config.json", "not valid JSON"),
    ),
    BadArtifact(
        "no weights", lambda f: _changed_zip(f, lambda copy: (copy / "model.safetensors").unlink()), 400, ("weights",)
    ),
    BadArtifact(
        "too many files",
        lambda f: pack_zip(f, extra=[(f"extra/{i}.txt", b"") for i in range(300)]),
        413,
        ("more than", "files and folders, the limit"),
    ),
    BadArtifact("encrypted entry", encrypted_zip, 400, ("encrypted",)),
    BadArtifact("plain text", lambda f: b"config.json says hello\n", 400, ("not a .zip or .tar.gz",)),
    BadArtifact("gzip of something else", lambda f: gzip.compress(b"plain text\n" * 100), 400, ("not a tar",)),
)
