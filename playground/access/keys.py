"""Personal API keys encrypted at rest with the server secret (Fernet: AES-128-CBC + HMAC).

The database holds only the Fernet token and a masked hint; without ``PLAYGROUND_SECRET_KEY``
a stolen database opens no key. Any long random string works as the secret: it is
stretched to a Fernet key with SHA-256.

Rotation: the new secret encrypts, earlier ones (``PLAYGROUND_OLD_SECRET_KEYS``) still
decrypt, and :meth:`KeyVault.rotate` re-encrypts a token with the new one
(``python -m playground keys rotate``; docs/deploy.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr

from playground.errors import ConfigError
from playground.redact import mask_secret

# cryptography is loaded by the first vault: only a server that keeps personal keys makes
# one, and other processes (an eval's start-up) need not spend ~10 ms importing it.
if TYPE_CHECKING:
    from cryptography.fernet import Fernet

MIN_SECRET_CHARS = 16
UNREADABLE_KEY = (
    "Your saved API key cannot be decrypted (the server secret changed without the old one "
    "in PLAYGROUND_OLD_SECRET_KEYS): enter it again in Settings."
)


class KeyVault:
    """Encrypts personal API keys with the server secret; decrypts with it or an old one."""

    def __init__(self, secret: SecretStr | None, old_secrets: Sequence[SecretStr] = ()) -> None:
        if secret is None or len(secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise ConfigError(
                "Personal API keys need PLAYGROUND_SECRET_KEY on the server "
                f"(a random string of at least {MIN_SECRET_CHARS} characters)."
            )
        from cryptography.fernet import MultiFernet

        # The first encrypts; every one is tried to decrypt.
        self._fernet = MultiFernet([_fernet(s) for s in (secret, *old_secrets)])

    def seal(self, api_key: SecretStr) -> tuple[str, str]:
        """The encrypted token to store and the masked hint to show (``nb_…a1b2``)."""
        token = self._fernet.encrypt(api_key.get_secret_value().encode()).decode()
        return token, mask_secret(api_key)

    def open(self, token: str) -> SecretStr:
        """The key inside ``token``; a :class:`ConfigError` when no configured secret opens it."""
        from cryptography.fernet import InvalidToken

        try:
            return SecretStr(self._fernet.decrypt(token.encode()).decode())
        except InvalidToken as exc:
            raise ConfigError(UNREADABLE_KEY) from exc

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted with the current secret; a :class:`ConfigError` as in open."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ConfigError(UNREADABLE_KEY) from exc


def _fernet(secret: SecretStr) -> Fernet:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(secret.get_secret_value().encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))
