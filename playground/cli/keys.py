"""``python -m playground keys rotate``: re-encrypt saved personal keys with the new secret."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from playground.config import Settings

EXIT_OK, EXIT_UNREADABLE = 0, 1


def add_keys_parser(commands: Any) -> None:
    """Register the ``keys`` subcommand on the CLI's subparsers."""
    parser = commands.add_parser("keys", help="personal API keys saved on a hosted server")
    actions = parser.add_subparsers(dest="keys_command", required=True)
    actions.add_parser(
        "rotate",
        help="re-encrypt every saved key with PLAYGROUND_SECRET_KEY "
        "(the old secrets in PLAYGROUND_OLD_SECRET_KEYS open them)",
    )


def run_keys_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Run ``keys rotate``; returns 0, or 1 when some saved keys open with no secret."""
    # Imported here: the other commands (eval's start-up above all) need no cryptography.
    from playground.access.audit import record_event
    from playground.access.keys import KeyVault
    from playground.access.users import rotate_personal_keys
    from playground.store import open_store

    vault = KeyVault(settings.secret_key, settings.old_secret_key_list)
    store = open_store(settings.resolved_database_url)
    try:
        with store.session() as session, session.begin():
            rotation = rotate_personal_keys(session, vault)
            details = {"rotated": rotation.rotated, "unreadable": len(rotation.unreadable)}
            record_event(session, None, "keys.rotated", None, details)
    finally:
        store.close()
    out.write(
        f"Re-encrypted {rotation.rotated} saved personal key(s) with PLAYGROUND_SECRET_KEY.\n"
    )
    if rotation.unreadable:
        out.write(
            f"{len(rotation.unreadable)} saved key(s) open with none of the configured secrets "
            f"({', '.join(rotation.unreadable)}): add the secret they were saved with to "
            "PLAYGROUND_OLD_SECRET_KEYS and run this again, or ask these users to enter their "
            "key again in Settings.\n"
        )
        return EXIT_UNREADABLE
    if settings.old_secret_key_list:
        out.write(
            "Every saved key now opens with PLAYGROUND_SECRET_KEY alone: "
            "remove PLAYGROUND_OLD_SECRET_KEYS from every process's settings.\n"
        )
    return EXIT_OK
