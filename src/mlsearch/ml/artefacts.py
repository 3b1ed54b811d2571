"""The content-addressed model store: `<data_dir>/models/<sha256>/` holds `model.zip` and its unpacked files.

Archives are fetched (http(s), file://), hash-verified and validated before anything is kept: no path traversal, no
symlinks, a model file of the declared format and a tokenizer. A failure leaves nothing behind."""

from __future__ import annotations

import hashlib
import logging
import shutil
import stat
import tempfile
import threading
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlsearch.errors import IllegalArgumentError

log = logging.getLogger(__name__)

_MODEL_SUFFIX = {"ONNX": ".onnx", "TORCH_SCRIPT": ".pt"}
_TOKENIZER = "tokenizer.json"
_TOKENIZER_ONLY = frozenset({"SPARSE_TOKENIZE"})
_BLOCK = 1 << 20
MAX_CHUNK_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Artefact:
    """A verified, unpacked model archive."""

    sha256: str
    size: int
    directory: Path  # the unpacked files, as a runtime loads them


class ArtefactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._incoming = root / ".incoming"
        self._lock = threading.Lock()

    # ---- fetching ---------------------------------------------------------------------------------------

    def fetch(self, url: str, *, allow_file: bool = True, timeout: float = 60.0) -> Path:
        """Download `url` (http, https or file) into a private temporary file; the caller adds or discards it."""
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme == "file":
            if not allow_file:
                raise IllegalArgumentError("file:// URLs are not allowed")
            source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
            if not source.is_file():
                raise IllegalArgumentError(f"Model file not found: {url}")
            return self._copy_in(source.open("rb"))
        if scheme not in ("http", "https"):
            raise IllegalArgumentError(f"Unsupported URL scheme [{scheme}] in {url}")
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except OSError as exc:
            raise IllegalArgumentError(f"Failed to download model from {url}: {exc}") from exc
        with response:
            return self._copy_in(response)

    def _copy_in(self, stream) -> Path:  # type: ignore[no-untyped-def]
        self._incoming.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=self._incoming, suffix=".zip", delete=False)  # noqa: SIM115
        with stream, handle:
            shutil.copyfileobj(stream, handle, _BLOCK)
        return Path(handle.name)

    # ---- adding -----------------------------------------------------------------------------------------

    def add(
        self, archive: Path, expected_sha256: str | None, model_format: str, function_name: str | None = None
    ) -> Artefact:
        """Verify and keep an archive (moved into the store, or discarded on any error)."""
        try:
            digest, size = _sha256(archive)
            if expected_sha256 is not None and digest != expected_sha256.lower():
                raise IllegalArgumentError(
                    f"model content changed: model_content_hash_value is {expected_sha256} but the archive's "
                    f"sha256 is {digest}"
                )
            validate_archive(archive, model_format, function_name)
            return self._keep(archive, digest, size)
        finally:
            archive.unlink(missing_ok=True)

    def _keep(self, archive: Path, digest: str, size: int) -> Artefact:
        final = self.root / digest
        with self._lock:
            if not (final / "unpacked").is_dir():
                self._incoming.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(dir=self._incoming))
                try:
                    with zipfile.ZipFile(archive) as zf:
                        zf.extractall(staging / "unpacked")
                    shutil.copyfile(archive, staging / "model.zip")
                    shutil.rmtree(final, ignore_errors=True)
                    staging.replace(final)  # one rename: a crash leaves either nothing or the whole entry
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
        return Artefact(digest, size, final / "unpacked")

    def find(self, digest: str) -> Artefact | None:
        final = self.root / digest
        archive = final / "model.zip"
        if not (final / "unpacked").is_dir() or not archive.is_file():
            return None
        return Artefact(digest, archive.stat().st_size, final / "unpacked")

    def remove(self, digest: str) -> None:
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            with self._lock:
                shutil.rmtree(self.root / digest, ignore_errors=True)

    # ---- chunked uploads ----------------------------------------------------------------------------------

    def put_chunk(self, upload_id: str, number: int, data: bytes) -> None:
        folder = self._uploads(upload_id)
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"{number}.part"
        part.write_bytes(data)
        part.replace(folder / str(number))

    def chunks_present(self, upload_id: str, total: int) -> bool:
        folder = self._uploads(upload_id)
        return all((folder / str(n)).is_file() for n in range(total))

    def assemble(self, upload_id: str, total: int) -> Path:
        """The chunks joined into one temporary archive; the chunks are removed."""
        folder = self._uploads(upload_id)
        self._incoming.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=self._incoming, suffix=".zip", delete=False)  # noqa: SIM115
        with handle:
            for n in range(total):
                with (folder / str(n)).open("rb") as part:
                    shutil.copyfileobj(part, handle, _BLOCK)
        self.discard_upload(upload_id)
        return Path(handle.name)

    def discard_upload(self, upload_id: str) -> None:
        shutil.rmtree(self._uploads(upload_id), ignore_errors=True)

    def _uploads(self, upload_id: str) -> Path:
        if not upload_id or "/" in upload_id or upload_id.startswith("."):
            raise IllegalArgumentError(f"invalid upload id [{upload_id}]")
        return self.root / ".uploads" / upload_id

    def clean_incoming(self) -> None:
        """Leftovers of downloads interrupted by a crash."""
        shutil.rmtree(self._incoming, ignore_errors=True)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def validate_archive(archive: Path, model_format: str, function_name: str | None = None) -> None:
    """Refuse unsafe or incomplete archives with a clear illegal_argument_exception.

    A SPARSE_TOKENIZE archive is a tokenizer (plus an optional idf.json) and nothing else: the runtime never loads a
    model file for it, so none is required."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise IllegalArgumentError(f"Model archive is not a valid zip file: {exc}") from exc
    files = []
    for info in infos:
        _check_entry(info)
        if not info.is_dir():
            files.append(PurePosixPath(info.filename))
    suffix = _MODEL_SUFFIX.get(model_format)
    if suffix is None:
        raise IllegalArgumentError(f"Unsupported model format [{model_format}]")
    needs_model = (function_name or "").upper() not in _TOKENIZER_ONLY
    if needs_model and not any(f.suffix == suffix for f in files):
        raise IllegalArgumentError(f"Model archive has no {model_format} model file (*{suffix})")
    if not any(f.name == _TOKENIZER for f in files):
        raise IllegalArgumentError(f"Model archive has no {_TOKENIZER}")


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise IllegalArgumentError(f"Model archive entry [{name}] points outside the archive")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise IllegalArgumentError(f"Model archive entry [{name}] is a symbolic link")
