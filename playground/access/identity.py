"""Who is signing in: from Streamlit's OIDC user info, or from a trusted proxy's header.

Pure functions over plain data (headers, the peer address, the user-info mapping), so the
rules are tested without a browser: a proxy header counts only when the TCP peer is one of
the configured proxies, because anyone can send that header to an exposed app port, and
when the request carries the proxy's shared secret, because anyone on the proxy's own host
(a loopback peer) can send it too.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from playground.errors import ConfigError, SignInError

_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,255}$")
MAX_NAME_CHARS = 200
PROXY_SECRET_HEADER = "X-Playground-Proxy-Secret"  # noqa: S105 (a header name)


@dataclass(frozen=True)
class Identity:
    """A verified person: ``subject`` is what ``owner`` columns store (lower-cased e-mail)."""

    subject: str
    email: str | None
    display_name: str


def parse_networks(
    specs: Iterable[str],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse proxy addresses or CIDR networks; a bad entry is a :class:`ConfigError`."""
    networks = []
    for spec in specs:
        try:
            networks.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"PLAYGROUND_TRUSTED_PROXIES: {spec!r} is not an IP address or network."
            ) from exc
    return networks


def identity_from_proxy(
    headers: Mapping[str, str],
    peer_ip: str | None,
    *,
    header: str,
    trusted_proxies: Iterable[str],
    secret: SecretStr,
) -> Identity:
    """The user named by ``header``, if the request came through a trusted proxy.

    Raises :class:`SignInError` when the peer is unknown or untrusted, the request does not
    carry ``secret`` in :data:`PROXY_SECRET_HEADER` (compared in constant time), or the
    header is missing or not an e-mail address.
    """
    networks = parse_networks(trusted_proxies)
    if peer_ip is None:
        raise SignInError("Cannot tell where this request came from; sign-in refused.")
    try:
        peer: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(peer_ip)
    except ValueError as exc:
        raise SignInError("Cannot tell where this request came from; sign-in refused.") from exc
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    if not any(peer in network for network in networks):
        raise SignInError(
            "This server signs people in through its reverse proxy; "
            "open it through the proxy's address."
        )
    sent = _header(headers, PROXY_SECRET_HEADER) or ""
    if not hmac.compare_digest(sent.encode(), secret.get_secret_value().encode()):
        raise SignInError(
            f"This request did not come through the server's reverse proxy (no or wrong "
            f"{PROXY_SECRET_HEADER} header); sign-in refused. Open the app through the proxy."
        )
    value = _header(headers, header)
    if not value:
        raise SignInError(f"The proxy did not say who you are (no {header} header).")
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise SignInError(f"The proxy's {header} header is not an e-mail address.")
    return Identity(subject=email, email=email, display_name=email.split("@", 1)[0])


def identity_from_oidc(user_info: Mapping[str, Any]) -> Identity:
    """The user described by the OpenID Connect claims Streamlit exposes as ``st.user``.

    The e-mail (lower-cased) is the subject when the provider sends one; otherwise the
    issuer-qualified ``sub`` claim.
    """
    raw_email = user_info.get("email")
    email = raw_email.strip().lower() if isinstance(raw_email, str) else None
    email = email if email and _EMAIL.match(email) else None
    sub = user_info.get("sub")
    if email is None and not (isinstance(sub, str) and sub):
        raise SignInError("The identity provider sent neither an e-mail nor a subject.")
    issuer = user_info.get("iss")
    subject = email or f"{issuer or 'oidc'}|{sub}"
    name = user_info.get("name")
    display = name if isinstance(name, str) and name.strip() else (email or str(sub))
    return Identity(subject=subject, email=email, display_name=display.strip()[:MAX_NAME_CHARS])


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
