"""Personal API keys encrypted at rest with the server secret (Fernet: AES-128-CBC + HMAC).

The database holds only the Fernet token and a masked hint; without ``PLAYGROUND_SECRET_KEY``
a stolen database opens no key. Any long random string works as the secret: it is
stretched to a Fernet key with SHA-256.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from playground.errors import ConfigError
from playground.redact import mask_secret

MIN_SECRET_CHARS = 16


class KeyVault:
    """Encrypts and decrypts personal API keys with one server secret."""

    def __init__(self, secret: SecretStr | None) -> None:
        if secret is None or len(secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise ConfigError(
                "Personal API keys need PLAYGROUND_SECRET_KEY on the server "
                f"(a random string of at least {MIN_SECRET_CHARS} characters)."
            )
        digest = hashlib.sha256(secret.get_secret_value().encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, api_key: SecretStr) -> tuple[str, str]:
        """The encrypted token to store and the masked hint to show (``nb_…a1b2``)."""
        token = self._fernet.encrypt(api_key.get_secret_value().encode()).decode()
        return token, mask_secret(api_key)

    def open(self, token: str) -> SecretStr:
        """The key inside ``token``; a :class:`ConfigError` when the server secret changed."""
        try:
            return SecretStr(self._fernet.decrypt(token.encode()).decode())
        except InvalidToken as exc:
            raise ConfigError(
                "Your saved API key cannot be decrypted (the server secret changed): "
                "enter it again in Settings."
            ) from exc
