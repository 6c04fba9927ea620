"""Endpoint secrets: generated, then kept encrypted at rest (Fernet) so the dispatcher can sign.

Secrets must be usable as HMAC keys, so they cannot be hashed like API tokens. The key comes from
METERLINE_SECRET_KEY or a key file (0600) created on first use; losing it makes the stored secrets
unreadable (rotate every endpoint's secret with the new key), and it is never written to the
database, so a copy of the database alone reveals no secret.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from meterline.domain.errors import InvalidInput, Unavailable
from meterline.domain.webhooks import SECRET_PREFIX

GENERATED_SECRET_BYTES = 32
KEY_HELP = "a Fernet key, such as the one `meterline secret-key` prints"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts with the first key, decrypts with any (so the key itself can be rotated)."""

    def __init__(self, keys: list[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except (ValueError, TypeError):
            raise InvalidInput(f"METERLINE_SECRET_KEY: each comma-separated key must be {KEY_HELP}") from None

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise Unavailable(
                "the endpoint secret cannot be decrypted with this server's METERLINE_SECRET_KEY"
            ) from None


def load_secret_box(secret_key: str | None, key_file: Path | None) -> SecretBox | None:
    """The box from the configured key, else from the key file (created if missing), else None."""
    if secret_key:
        return SecretBox([k for k in secret_key.split(",") if k.strip()])
    if key_file is None:
        return None
    return SecretBox([_read_or_create_key(key_file)])


def _read_or_create_key(path: Path) -> str:
    """Create the key file atomically with mode 0600; whoever links it first wins a race."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(Fernet.generate_key().decode() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink(missing_ok=True)
    return path.read_text().strip()


def require_box(box: SecretBox | None) -> SecretBox:
    """Endpoints need a key: on PostgreSQL there is no default file beside the database."""
    if box is None:
        raise Unavailable(
            "webhook endpoints need METERLINE_SECRET_KEY (or METERLINE_SECRET_KEY_FILE) on this"
            f" server to encrypt their secrets; set it to {KEY_HELP}"
        )
    return box
