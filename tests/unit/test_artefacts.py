"""The model store: archive validation, hash checks, content addressing, chunk assembly, file:// fetches."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.artefacts import ArtefactStore, validate_archive


def _zip(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


GOOD = {"model.onnx": b"weights", "tokenizer.json": b"{}"}


def _file(tmp_path: Path, data: bytes, name: str = "m.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_complete_archive_is_kept_unpacked_under_its_sha256(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "models")
    data = _zip(GOOD)
    artefact = store.add(_file(tmp_path, data), hashlib.sha256(data).hexdigest(), "ONNX")
    assert artefact.sha256 == hashlib.sha256(data).hexdigest()
    assert artefact.size == len(data)
    assert artefact.directory == tmp_path / "models" / artefact.sha256 / "unpacked"
    assert (artefact.directory / "tokenizer.json").read_bytes() == b"{}"
    assert store.find(artefact.sha256) == artefact
    assert not (tmp_path / "m.zip").exists()  # moved in, not copied


def test_the_same_content_is_stored_once(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "models")
    data = _zip(GOOD)
    first = store.add(_file(tmp_path, data, "a.zip"), None, "ONNX")
    second = store.add(_file(tmp_path, data, "b.zip"), None, "ONNX")
    assert first == second
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.startswith(".")] == [first.sha256]


def test_a_wrong_hash_keeps_nothing(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "models")
    with pytest.raises(IllegalArgumentError, match="model content changed"):
        store.add(_file(tmp_path, _zip(GOOD)), "0" * 64, "ONNX")
    assert not (tmp_path / "m.zip").exists()
    assert [p for p in (tmp_path / "models").glob("*") if not p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("entries", "symlink", "message"),
    [
        ({**GOOD, "../evil.txt": b"x"}, None, "points outside the archive"),
        ({**GOOD, "/abs/evil.txt": b"x"}, None, "points outside the archive"),
        ({**GOOD, "dir/../../evil.txt": b"x"}, None, "points outside the archive"),
        (GOOD, "link", "is a symbolic link"),
        ({"tokenizer.json": b"{}"}, None, "has no ONNX model file"),
        ({"model.onnx": b"w"}, None, "has no tokenizer.json"),
    ],
)
def test_unsafe_or_incomplete_archives_are_refused(
    tmp_path: Path, entries: dict[str, bytes], symlink: str | None, message: str
) -> None:
    path = _file(tmp_path, _zip(entries, symlink=symlink))
    with pytest.raises(IllegalArgumentError, match=message):
        validate_archive(path, "ONNX")


def test_the_model_file_must_match_the_format(tmp_path: Path) -> None:
    path = _file(tmp_path, _zip(GOOD))
    with pytest.raises(IllegalArgumentError, match="no TORCH_SCRIPT model file"):
        validate_archive(path, "TORCH_SCRIPT")
    validate_archive(_file(tmp_path, _zip({"m.pt": b"w", "tokenizer.json": b"{}"}), "t.zip"), "TORCH_SCRIPT")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IllegalArgumentError, match="not a valid zip"):
        validate_archive(_file(tmp_path, b"not a zip at all"), "ONNX")


def test_chunks_are_assembled_in_order(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "models")
    data = _zip(GOOD)
    parts = [data[:10], data[10:50], data[50:]]
    for n in (2, 0):
        store.put_chunk("model1", n, parts[n])
    assert not store.chunks_present("model1", 3)
    store.put_chunk("model1", 1, parts[1])
    assert store.chunks_present("model1", 3)
    archive = store.assemble("model1", 3)
    assert archive.read_bytes() == data
    assert not (tmp_path / "models" / ".uploads" / "model1").exists()
    assert store.add(archive, hashlib.sha256(data).hexdigest(), "ONNX").size == len(data)


def test_upload_ids_cannot_escape_the_store(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "models")
    with pytest.raises(IllegalArgumentError):
        store.put_chunk("../x", 0, b"data")


def test_fetch_reads_file_urls_and_refuses_other_schemes(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "models")
    source = _file(tmp_path, _zip(GOOD), "src.zip")
    fetched = store.fetch(source.as_uri())
    assert fetched.read_bytes() == source.read_bytes()
    assert source.exists()  # a copy: the user's file is left alone
    with pytest.raises(IllegalArgumentError, match="Unsupported URL scheme"):
        store.fetch("ftp://example.invalid/model.zip")
    with pytest.raises(IllegalArgumentError, match="not found"):
        store.fetch((tmp_path / "missing.zip").as_uri())
    with pytest.raises(IllegalArgumentError, match="not allowed"):
        store.fetch(source.as_uri(), allow_file=False)


def test_a_tokenizer_only_archive_is_enough_for_sparse_tokenize(tmp_path: Path) -> None:
    entries = {"tokenizer.json": b"{}", "idf.json": b'{"hello": 2.5}'}
    validate_archive(_file(tmp_path, _zip(entries), "a.zip"), "ONNX", "SPARSE_TOKENIZE")
    validate_archive(_file(tmp_path, _zip(entries), "b.zip"), "TORCH_SCRIPT", "sparse_tokenize")
    store = ArtefactStore(tmp_path / "models")
    artefact = store.add(_file(tmp_path, _zip(entries), "c.zip"), None, "ONNX", "SPARSE_TOKENIZE")
    assert (artefact.directory / "idf.json").is_file()
    # Every other function still needs its model file, and a tokenizer stays mandatory for SPARSE_TOKENIZE.
    with pytest.raises(IllegalArgumentError, match="has no ONNX model file"):
        validate_archive(_file(tmp_path, _zip(entries), "d.zip"), "ONNX", "SPARSE_ENCODING")
    with pytest.raises(IllegalArgumentError, match=r"has no tokenizer\.json"):
        validate_archive(_file(tmp_path, _zip({"idf.json": b"{}"}), "e.zip"), "ONNX", "SPARSE_TOKENIZE")
