"""``python -m playground doctor``: check a server's configuration before its first start.

One line per check, ``ok`` or ``PROBLEM`` with what was found and what to do; the exit code
is 1 when any check found a problem. Nothing is written to the database and no secret is
printed (not even part of one): the team key is only used to ask the API for the balance.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from playground.access.identity import PROXY_SECRET_HEADER, parse_networks
from playground.access.keys import KeyVault
from playground.catalog import Catalog, load_catalog
from playground.config import Settings, load_settings
from playground.errors import ConfigError, PlaygroundError
from playground.providers._http import RetryPolicy
from playground.providers.elumenta import ElumentaProvider
from playground.redact import mask_url
from playground.store.db import read_schema_version

API_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``detail`` says what was found, or what is wrong and what to do."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """The check as the one line ``doctor`` prints."""
        return f"{'ok' if self.ok else 'PROBLEM':<8}{self.name}: {self.detail}"


def run_checks(*, check_api: bool = True) -> list[Check]:
    """Every check, in the order an operator fixes things; settings that do not parse stop
    the rest (every other check reads them)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        return [Check("settings", False, str(exc))]
    checks: list[Callable[[Settings], Check]] = [_data_dir, _database, _sign_in, _personal_keys]
    results = [Check("settings", True, f"parsed (PLAYGROUND_AUTH={settings.auth_mode})")]
    results += [check(settings) for check in checks]
    try:
        catalog = load_catalog(settings.resolved_catalog_path)
    except ConfigError as exc:
        return [*results, Check("model catalog", False, str(exc))]
    results.append(Check("model catalog", True, f"{len(catalog)} models"))
    results.append(_team_key(settings, catalog, check_api=check_api))
    return results


def run_doctor(out: TextIO, *, check_api: bool = True) -> int:
    """Print every check; 0 when all are ok, else 1."""
    results = run_checks(check_api=check_api)
    for result in results:
        out.write(result.line() + "\n")
    return 0 if all(result.ok for result in results) else 1


def _data_dir(settings: Settings) -> Check:
    directory = settings.data_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "data dir",
            False,
            f"cannot write to {directory} ({exc.strerror or exc}): create it and make it "
            "writable by the service user, or set PLAYGROUND_DATA_DIR.",
        )
    return Check("data dir", True, f"{directory} is writable")


def _database(settings: Settings) -> Check:
    url = settings.resolved_database_url
    try:
        version, may_create = read_schema_version(url)
    except ConfigError as exc:
        return Check("database", False, str(exc))
    where = mask_url(url)
    if version.state == "newer":
        return Check("database", False, str(version.newer_error(url)))
    if version.state == "current":
        return Check("database", True, f"{where} reachable, schema at {version.head} (current)")
    if not may_create:
        return Check(
            "database",
            False,
            f"{where} reachable, but its user may not create tables in its schema, so the "
            f"migrations to {version.head} would fail (PostgreSQL 15: 'permission denied for "
            "schema public'): make the role the database's owner (ALTER DATABASE … OWNER TO …) "
            "or GRANT CREATE ON SCHEMA public TO it; see docs/deploy.md, Installation.",
        )
    return Check(
        "database",
        True,
        f"{where} reachable, schema at {version.current or 'nothing yet'}: the migrations to "
        f"{version.head} run when the first app or worker process starts",
    )


def _sign_in(settings: Settings) -> Check:
    if settings.auth_mode == "none":
        return Check(
            "sign-in",
            True,
            "none: the local single-user app (a team server sets PLAYGROUND_AUTH=oidc or proxy)",
        )
    if settings.auth_mode == "oidc":
        return Check("sign-in", True, "oidc: Streamlit's st.login with the [auth] secrets")
    try:
        networks = parse_networks(settings.trusted_proxy_list)
    except ConfigError as exc:
        return Check("sign-in", False, str(exc))
    if os.environ.get("FORWARDED_ALLOW_IPS") != "":
        return Check(
            "sign-in",
            False,
            "proxy mode needs FORWARDED_ALLOW_IPS= (set and empty) in the environment, or the "
            "app would check the browser's claimed address; see docs/deploy.md, Proxy mode.",
        )
    if not networks:
        return Check("sign-in", False, "PLAYGROUND_TRUSTED_PROXIES is empty: nobody can sign in.")
    trusted = ", ".join(str(network) for network in networks)
    return Check(
        "sign-in",
        True,
        f"proxy: {settings.identity_header} from {trusted} with the proxy secret in "
        f"{PROXY_SECRET_HEADER}; FORWARDED_ALLOW_IPS is empty",
    )


def _personal_keys(settings: Settings) -> Check:
    if not settings.hosted:
        return Check("personal keys", True, "not used by the local app")
    try:
        KeyVault(settings.secret_key)
    except ConfigError as exc:
        return Check("personal keys", False, f"{exc} Without it nobody can save a personal key.")
    return Check("personal keys", True, "PLAYGROUND_SECRET_KEY is set")


def _team_key(settings: Settings, catalog: Catalog, *, check_api: bool) -> Check:
    name = "team key" if settings.hosted else "API key"
    if settings.elumenta_api_key is None:
        if settings.provider not in (None, "elumenta") or not settings.hosted:
            return Check(name, True, "ELUMENTA_API_KEY not set (not needed with this provider)")
        return Check(
            name,
            False,
            "ELUMENTA_API_KEY is not set: users without a personal key get the offline demo. "
            "Put the team key in the environment file.",
        )
    if not check_api:
        return Check(name, True, "ELUMENTA_API_KEY is set (the API was not asked: --no-api)")
    try:
        balance = asyncio.run(_balance(settings, catalog))
    except PlaygroundError as exc:
        return Check(
            name,
            False,
            f"ELUMENTA_API_KEY is set, but {settings.elumenta_base_url} answered: {exc}",
        )
    return Check(
        name,
        True,
        f"ELUMENTA_API_KEY is set and {settings.elumenta_base_url} accepts it "
        f"(balance {balance if balance is not None else 'unknown'} tokens)",
    )


async def _balance(settings: Settings, catalog: Catalog) -> int | None:
    provider = ElumentaProvider(
        api_key=settings.elumenta_api_key,
        base_url=settings.elumenta_base_url,
        catalog=catalog,
        connect_timeout_s=min(settings.connect_timeout_s, API_TIMEOUT_S),
        read_timeout_s=min(settings.read_timeout_s, API_TIMEOUT_S),
        retry=RetryPolicy(max_retries=0),
    )
    try:
        return (await provider.balance()).token_balance
    finally:
        await provider.aclose()
