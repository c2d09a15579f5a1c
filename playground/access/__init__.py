"""Hosted team mode: who the user is, what they may see and spend, and what they did.

Local mode (``PLAYGROUND_AUTH=none``) never builds a :class:`Principal`: every function
here that takes ``principal=None`` means "the single local user, who sees everything".
"""

from playground.access.identity import Identity, identity_from_oidc, identity_from_proxy
from playground.principal import Principal, can_view, owns, visible_to

__all__ = [
    "Identity",
    "Principal",
    "can_view",
    "identity_from_oidc",
    "identity_from_proxy",
    "owns",
    "visible_to",
]
