"""Settings: provider, Elumenta and OpenAI-compatible URLs and keys, balance, catalog.

Locally the keys are kept in this browser session only. On a hosted server each user may
save a personal key (encrypted at rest, never shown back) or run on the team's key.
"""

from __future__ import annotations

import streamlit as st
from pydantic import SecretStr

from playground.errors import PlaygroundError, user_message
from playground.principal import Principal
from playground.providers.registry import key_format_warning, withheld_key_message
from playground.services import hosted, runtime
from ui.auth import current_principal, forget_connection, session_connection
from ui.connection import (
    API_KEY_KEY,
    BASE_URL_KEY,
    OPENAI_API_KEY_KEY,
    OPENAI_BASE_URL_KEY,
    OPENAI_MODELS_KEY,
    PROVIDER_CHOICE_KEY,
    connection_from_state,
)

settings = runtime.get_settings()
principal = current_principal()
openai_configured = bool(settings.openai_base_url or st.session_state.get(OPENAI_BASE_URL_KEY))
choices = ["auto", "elumenta", "demo"] + (["openai_compatible"] if openai_configured else [])
choice_labels = {"auto": "Automatic (Elumenta with a key, else demo)", **runtime.PROVIDER_LABELS}


def hosted_key_section(principal: Principal) -> None:
    """The user's own key: save (encrypted) or forget; the team key is the fallback."""
    st.subheader("Your API key")
    hint = hosted.key_hint(principal)
    team = settings.elumenta_api_key is not None
    if hint:
        st.markdown(f"Runs use **your personal key** `{hint}` (stored encrypted on the server).")
    elif team:
        st.markdown("Runs use the **team key** configured on the server.")
    else:
        st.markdown("No key: runs use the offline demo until you save your own key.")
    # A form that clears on submit: the typed key is never sent back to the browser.
    with st.form("settings.personal_key", clear_on_submit=True, enter_to_submit=True):
        typed = st.text_input("Personal Elumenta API key", type="password", placeholder="nb_…")
        if st.form_submit_button("Save my key", icon=":material/key:") and typed.strip():
            if warning := key_format_warning(typed):
                st.warning(warning, icon=":material/key:")
            try:
                saved = hosted.store_personal_key(principal, SecretStr(typed))
            except PlaygroundError as exc:
                st.error(user_message(exc))
            else:
                forget_connection()
                st.success(f"Saved: {saved}. Your runs now use it.")
    if hint and st.button("Forget my key", icon=":material/key_off:"):
        hosted.forget_personal_key(principal)
        forget_connection()
        st.rerun()
    limits, spend = hosted.limits_and_spend(principal)
    st.subheader("Your limits")
    st.markdown(
        f"- Today: **{spend.today_tokens:,}** of "
        f"{_limit(limits.daily_budget_tokens)} billing tokens\n"
        f"- This month: **{spend.month_tokens:,}** of "
        f"{_limit(limits.monthly_budget_tokens)} billing tokens\n"
        f"- Requests: at most **{limits.requests_per_minute}** model requests per minute"
    )


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


st.title("Settings")

if principal is not None:
    hosted_key_section(principal)
    connection = session_connection()
else:
    st.subheader("Provider")
    st.session_state.setdefault(PROVIDER_CHOICE_KEY, "auto")
    st.session_state.setdefault(BASE_URL_KEY, settings.elumenta_base_url)
    st.radio(
        "Provider",
        choices,
        key=PROVIDER_CHOICE_KEY,
        format_func=choice_labels.get,
        persist_state="session",
    )
    st.text_input(
        "Elumenta base URL",
        key=BASE_URL_KEY,
        persist_state="session",
        help="Change it only to use another Elumenta-compatible server (e.g. a local test "
        "server). The key from the environment is sent only to the configured URL: for any "
        "other, enter the key below.",
    )
    st.text_input(
        "Elumenta API key",
        key=API_KEY_KEY,
        persist_state="session",
        type="password",
        placeholder="nb_…",
        help="Kept in this browser session only: never saved to the database, a file or a link. "
        "Leave empty to use ELUMENTA_API_KEY from the environment or .streamlit/secrets.toml.",
    )
    key_warning = key_format_warning(st.session_state.get(API_KEY_KEY) or "")
    if key_warning:
        st.warning(key_warning, icon=":material/key:")
    with st.expander("OpenAI-compatible server (Ollama, vLLM, LiteLLM, OpenRouter)"):
        st.session_state.setdefault(OPENAI_BASE_URL_KEY, settings.openai_base_url or "")
        st.text_input(
            "Base URL, including /v1",
            key=OPENAI_BASE_URL_KEY,
            persist_state="session",
            placeholder="http://localhost:11434/v1",
            help="Its models appear beside Elumenta's. OPENAI_COMPATIBLE_API_KEY from the "
            "environment is sent only to OPENAI_COMPATIBLE_BASE_URL: for any other URL, "
            "enter the key below.",
        )
        st.text_input(
            "API key",
            key=OPENAI_API_KEY_KEY,
            persist_state="session",
            type="password",
            help="Kept in this browser session only. Leave empty for a server without keys "
            "or to use OPENAI_COMPATIBLE_API_KEY.",
        )
        st.text_input(
            "Models (comma-separated)",
            key=OPENAI_MODELS_KEY,
            persist_state="session",
            placeholder=settings.openai_models or "llama3, qwen2.5",
            help="Empty: OPENAI_COMPATIBLE_MODELS from the environment.",
        )
    connection = connection_from_state(st.session_state)
    st.markdown(f"In use: **{connection.label}** · key: `{connection.key_hint}`")
    if connection.provider == "elumenta" and connection.key_withheld:
        st.warning(
            withheld_key_message(settings, connection.elumenta_base_url), icon=":material/key:"
        )
    elif connection.provider == "elumenta" and connection.api_key is None:
        st.warning(
            "Elumenta is selected but no API key is set: every run will fail until you add one."
        )

st.subheader("Account")
if st.button("Check balance", icon=":material/account_balance_wallet:"):
    try:
        balance = runtime.fetch_balance(connection)
    except PlaygroundError as exc:
        st.error(user_message(exc), icon=":material/error:")
    else:
        quota = balance.rate_limit
        lines = [f"Balance: **{balance.token_balance}** billing tokens · plan **{balance.plan}**"]
        if balance.plan_expires_at:
            lines.append(f"Plan expires: {balance.plan_expires_at}")
        if quota is not None:
            lines.append(
                f"Requests left: {quota.remaining_hour}/{quota.limit_hour} this hour, "
                f"{quota.remaining_day}/{quota.limit_day} today"
            )
        st.success("  \n".join(lines), icon=":material/check_circle:")

if principal is not None and not principal.is_admin:
    st.stop()  # the catalog file and the database are the server's: admins only

st.subheader("Model catalog")
catalog_path = settings.resolved_catalog_path
if catalog_path.exists():
    st.caption(f"Read from `{catalog_path}`; edit that file or refresh it from the API.")
else:
    st.caption(f"The packaged catalog; a refresh saves the current prices to `{catalog_path}`.")
if st.button("Refresh model catalog", icon=":material/sync:"):
    try:
        with st.spinner("Asking the API for each model's price…"):
            refreshed, errors = runtime.refresh_model_catalog(connection)
    except PlaygroundError as exc:
        st.error(user_message(exc), icon=":material/error:")
    else:
        if refreshed:
            st.success(f"Refreshed {refreshed} models; saved to {settings.resolved_catalog_path}.")
        for slug, error in errors.items():
            st.warning(f"{slug}: {error}")
st.dataframe(
    [
        {"model": m.name, "slug": m.slug, "tier": m.tier, "billing tokens": m.token_cost}
        for m in runtime.get_catalog()
    ],
    hide_index=True,
)

st.subheader("Storage")
st.markdown("Database in use:")
st.code(runtime.database_label(), language=None, wrap_lines=True)
st.caption(f"Data directory: `{settings.data_dir}`")
