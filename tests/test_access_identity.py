"""Who is signing in: the trusted-proxy header rules and the OIDC claims (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from pydantic import SecretStr

from playground.access import Identity, identity_from_oidc, identity_from_proxy
from playground.access.identity import MAX_NAME_CHARS, PROXY_SECRET_HEADER
from playground.errors import ConfigError, SignInError

HEADER = "X-Forwarded-Email"
LOCAL_PROXIES = ("127.0.0.1/32", "::1/128")
PROXY_SECRET = "s3cret-the-proxy-and-the-app-share"


def from_proxy(
    value: str | None,
    peer_ip: str | None = "127.0.0.1",
    *,
    trusted: Sequence[str] = LOCAL_PROXIES,
    headers: Mapping[str, str] | None = None,
) -> Identity:
    """``identity_from_proxy`` with ``value`` in the default header (unless ``headers``),
    sent with the proxy's secret (unless ``headers``)."""
    if headers is None:
        headers = {PROXY_SECRET_HEADER: PROXY_SECRET}
        headers |= {} if value is None else {HEADER: value}
    return identity_from_proxy(
        headers,
        peer_ip,
        header=HEADER,
        trusted_proxies=trusted,
        secret=SecretStr(PROXY_SECRET),
    )


# --- identity_from_proxy: which peers are trusted -------------------------------------


@pytest.mark.parametrize(
    ("peer_ip", "trusted"),
    [
        ("127.0.0.1", ["127.0.0.1"]),  # a bare address means that one host
        ("127.0.0.1", list(LOCAL_PROXIES)),
        ("::1", list(LOCAL_PROXIES)),
        ("10.20.30.40", ["10.0.0.0/8"]),
        ("172.18.0.5", [" 192.168.0.0/16 ", "172.16.0.0/12"]),  # spaces around entries
        ("fd00:1234::7", ["fd00::/8"]),
        ("2001:db8::1", ["2001:db8::1"]),
        ("10.0.0.200", ["10.0.0.1/24"]),  # host bits set: taken as the network
        ("::ffff:127.0.0.1", list(LOCAL_PROXIES)),  # IPv4 peer seen by a dual-stack listener
        ("::ffff:10.1.2.3", ["10.0.0.0/8"]),
    ],
)
def test_a_trusted_peer_is_believed(peer_ip: str, trusted: list[str]) -> None:
    identity = from_proxy("ana@example.org", peer_ip, trusted=trusted)
    assert identity == Identity(
        subject="ana@example.org", email="ana@example.org", display_name="ana"
    )


@pytest.mark.parametrize(
    ("peer_ip", "trusted"),
    [
        ("203.0.113.9", list(LOCAL_PROXIES)),  # the open internet
        ("127.0.0.2", ["127.0.0.1/32"]),
        ("11.0.0.1", ["10.0.0.0/8"]),
        ("::2", ["::1/128"]),
        ("10.0.0.1", ["fd00::/8"]),  # IPv4 peer, only IPv6 proxies
        ("10.0.0.1", []),  # no proxies configured: nobody is trusted
        ("::ffff:203.0.113.9", list(LOCAL_PROXIES)),
        ("::ffff:127.0.0.2", ["127.0.0.1/32"]),
    ],
)
def test_an_untrusted_peer_is_refused_even_with_the_header(
    peer_ip: str, trusted: list[str]
) -> None:
    with pytest.raises(SignInError, match="reverse proxy"):
        from_proxy("admin@example.org", peer_ip, trusted=trusted)


@pytest.mark.parametrize("peer_ip", [None, "", "not-an-ip", "10.0.0.0/8", "127.0.0.1:8501"])
def test_an_unknown_or_unreadable_peer_is_refused(peer_ip: str | None) -> None:
    with pytest.raises(SignInError, match="Cannot tell where this request came from"):
        from_proxy("ana@example.org", peer_ip)


@pytest.mark.parametrize("spec", ["localhost", "10.0.0.0/33", "300.1.1.1", "::1/129", ""])
def test_a_bad_trusted_proxy_entry_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="PLAYGROUND_TRUSTED_PROXIES") as caught:
        from_proxy("ana@example.org", "127.0.0.1", trusted=["127.0.0.1", spec])
    assert repr(spec) in str(caught.value)


def test_a_bad_trusted_proxy_entry_is_reported_before_the_peer_is_judged() -> None:
    # A misconfigured server must say so, not look like a sign-in problem of the user.
    with pytest.raises(ConfigError):
        from_proxy("ana@example.org", None, trusted=["not-a-network"])


# --- identity_from_proxy: the proxy's secret ---------------------------------------------


@pytest.mark.parametrize(
    "sent",
    [
        {},  # a forged identity header sent straight to the app port from the same host
        {PROXY_SECRET_HEADER: ""},
        {PROXY_SECRET_HEADER: "wrong"},
        {PROXY_SECRET_HEADER: PROXY_SECRET[:-1]},
        {PROXY_SECRET_HEADER: PROXY_SECRET + "x"},
        {PROXY_SECRET_HEADER: PROXY_SECRET.upper()},
        {PROXY_SECRET_HEADER: "пароль"},
        {"X-Playground-Proxy": PROXY_SECRET},
    ],
)
def test_a_trusted_peer_without_the_proxy_secret_is_refused(sent: dict[str, str]) -> None:
    with pytest.raises(SignInError, match="did not come through") as caught:
        from_proxy(None, headers={HEADER: "admin@example.org", **sent})
    assert PROXY_SECRET not in str(caught.value)


@pytest.mark.parametrize("sent_name", [PROXY_SECRET_HEADER, PROXY_SECRET_HEADER.lower()])
def test_the_proxy_secret_signs_in(sent_name: str) -> None:
    identity = from_proxy(None, headers={HEADER: "admin@example.org", sent_name: PROXY_SECRET})
    assert identity.subject == "admin@example.org"


def test_the_secret_does_not_make_an_untrusted_peer_trusted() -> None:
    with pytest.raises(SignInError, match="reverse proxy"):
        from_proxy("admin@example.org", "203.0.113.9")


# --- identity_from_proxy: the header ----------------------------------------------------


def test_a_missing_header_is_refused_and_named() -> None:
    with pytest.raises(SignInError, match=HEADER):
        from_proxy(
            None,
            headers={"X-Forwarded-User": "ana@example.org", PROXY_SECRET_HEADER: PROXY_SECRET},
        )


def test_an_empty_header_is_refused() -> None:
    with pytest.raises(SignInError, match="did not say who you are"):
        from_proxy("")


@pytest.mark.parametrize(
    "sent_name", ["x-forwarded-email", "X-FORWARDED-EMAIL", "x-Forwarded-eMail", HEADER]
)
def test_the_header_name_is_case_insensitive(sent_name: str) -> None:
    headers = {
        "Host": "play.example.org",
        sent_name: "ana@x.org",
        PROXY_SECRET_HEADER: PROXY_SECRET,
    }
    identity = from_proxy(None, headers=headers)
    assert identity.subject == "ana@x.org"


@pytest.mark.parametrize(
    "value",
    [
        "alice",
        "a@b@c",
        "<script>@x",
        "ana@<script>",
        "@example.org",
        "ana@",
        "ana smith@example.org",
        '"ana"@example.org',
        "ana'@example.org",
        "ana@exa mple.org",
        "ana@example.org\nX-Admin: yes",
        "a" * 65 + "@example.org",
        "ana@" + "e" * 256,
    ],
)
def test_a_header_that_is_not_an_e_mail_address_is_refused(value: str) -> None:
    with pytest.raises(SignInError, match="not an e-mail address"):
        from_proxy(value)


def test_the_e_mail_is_lower_cased_and_trimmed() -> None:
    identity = from_proxy("  Ana.Smith@Example.ORG \t")
    assert identity == Identity(
        subject="ana.smith@example.org", email="ana.smith@example.org", display_name="ana.smith"
    )


def test_the_longest_allowed_local_part_and_domain_are_accepted() -> None:
    email = "a" * 64 + "@" + "e" * 255
    assert from_proxy(email).subject == email


# --- identity_from_oidc ----------------------------------------------------------------


def test_oidc_prefers_the_e_mail_lower_cased() -> None:
    identity = identity_from_oidc(
        {"email": "Ana@Example.ORG", "sub": "1234", "iss": "https://idp.example.org", "name": "Ana"}
    )
    assert identity == Identity(
        subject="ana@example.org", email="ana@example.org", display_name="Ana"
    )


def test_oidc_without_an_e_mail_uses_the_issuer_qualified_subject() -> None:
    identity = identity_from_oidc({"sub": "1234", "iss": "https://idp.example.org"})
    assert identity == Identity(
        subject="https://idp.example.org|1234", email=None, display_name="1234"
    )


def test_the_same_sub_from_two_issuers_is_two_people() -> None:
    first = identity_from_oidc({"sub": "1234", "iss": "https://one.example.org"})
    second = identity_from_oidc({"sub": "1234", "iss": "https://two.example.org"})
    assert first.subject != second.subject


def test_oidc_without_an_issuer_still_qualifies_the_subject() -> None:
    assert identity_from_oidc({"sub": "1234"}).subject == "oidc|1234"


@pytest.mark.parametrize("email", ["not-an-email", "a@b@c", "<script>@x", "", 42, None])
def test_oidc_ignores_an_e_mail_claim_that_is_not_one(email: object) -> None:
    identity = identity_from_oidc({"email": email, "sub": "1234", "iss": "https://idp"})
    assert identity.subject == "https://idp|1234"
    assert identity.email is None


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"name": "Ana", "iss": "https://idp"},
        {"sub": ""},
        {"sub": 1234},
        {"sub": None, "email": None},
        {"email": "not-an-email"},
    ],
)
def test_oidc_with_neither_e_mail_nor_subject_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(SignInError, match="neither an e-mail nor a subject"):
        identity_from_oidc(claims)


@pytest.mark.parametrize(
    ("claims", "display_name"),
    [
        ({"email": "ana@x.org", "name": "  Ana Smith  "}, "Ana Smith"),
        ({"email": "ana@x.org", "name": "   "}, "ana@x.org"),  # blank name: the e-mail
        ({"email": "Ana@X.org"}, "ana@x.org"),
        ({"email": "ana@x.org", "name": 7}, "ana@x.org"),  # a non-text name is ignored
        ({"sub": "u-1", "name": "Бoris"}, "Бoris"),
        ({"sub": "u-1"}, "u-1"),
    ],
)
def test_oidc_display_name(claims: dict[str, object], display_name: str) -> None:
    assert identity_from_oidc(claims).display_name == display_name


def test_oidc_display_name_is_cut_to_the_column_size() -> None:
    identity = identity_from_oidc({"email": "ana@x.org", "name": "N" * (MAX_NAME_CHARS + 50)})
    assert identity.display_name == "N" * MAX_NAME_CHARS
