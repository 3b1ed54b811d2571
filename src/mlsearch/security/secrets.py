"""Credential encryption at rest: AES-256-GCM with a node master key.

The key comes from MLSEARCH_MASTER_KEY (base64 of 32 bytes, read by the composition root) or from `<data_dir>/master.key`,
created with 0600 permissions on first use. Ciphertexts are `base64(nonce || ciphertext+tag)`; plaintexts exist only in
memory, while a request is being built."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mlsearch.errors import IllegalArgumentError, StatusError

KEY_FILE = "master.key"
_NONCE = 12


class SecretBox:
    """Encrypts and decrypts credential values with the node's master key (loaded or created lazily)."""

    def __init__(self, data_dir: Path, master_key: str | None = None) -> None:
        self._path = data_dir / KEY_FILE
        self._given = master_key
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    def encrypt(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._cipher().encrypt(nonce, plaintext.encode(), None)
        return base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        try:
            raw = base64.b64decode(token, validate=True)
            return self._cipher().decrypt(raw[:_NONCE], raw[_NONCE:], None).decode()
        except (InvalidTag, ValueError, binascii.Error) as exc:
            # A changed master key or a damaged record: say so without revealing anything.
            raise StatusError("Failed to decrypt the connector credential", status=500) from exc

    def encrypt_map(self, values: dict[str, str]) -> dict[str, str]:
        return {k: self.encrypt(str(v)) for k, v in values.items()}

    def decrypt_map(self, values: dict[str, str]) -> dict[str, str]:
        return {k: self.decrypt(v) for k, v in values.items()}

    def _cipher(self) -> AESGCM:
        with self._lock:
            if self._aead is None:
                self._aead = AESGCM(self._load_key())
            return self._aead

    def _load_key(self) -> bytes:
        if self._given:
            return _decode_key(self._given)
        if self._path.exists():
            return _decode_key(self._path.read_text().strip())
        key = AESGCM.generate_key(bit_length=256)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL + 0600: the key is never world-readable, not even for an instant.
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(key).decode())
        return key


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise IllegalArgumentError("the master key must be the base64 encoding of 32 bytes")
    return key
