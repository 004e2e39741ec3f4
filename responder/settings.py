"""Settings from the environment (and a .env file), under the names DESIGN.md promises."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

from responder.bot.attachment_policy import (
    DEFAULT_ATTACHMENT_HOSTS,
    parse_dev_origins,
    parse_host_suffixes,
)
from responder.store.db import DEFAULT_URL

DEFAULT_CONFIG = Path(__file__).with_name("defaults") / "council.yaml"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    port: int = 3978
    host: str = "0.0.0.0"
    database_url: str = DEFAULT_URL
    config_path: Path = DEFAULT_CONFIG
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_tenant_id: str = ""
    app_type: str = "MultiTenant"
    # Where Bot Framework publishes its token signing keys; override only for a sovereign
    # cloud or a local test double.
    bot_openid_metadata_url: str = ""
    notify_api_key: str = field(default="", repr=False)
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    notify_callback_token: str = field(default="", repr=False)
    # GOV.UK Notify allows 3,000 messages a minute per key; stay a little under it.
    notify_per_minute: int = 2900
    # Intake credentials: key name (recorded as the source system) -> secret.
    intake_keys: dict[str, str] = field(default_factory=dict, repr=False)
    environment: str = "development"
    # Deliver the outbox from this process (off: an intake-only instance, or tests of intake).
    background: bool = True
    # Run scheduled jobs (digest, escalations, purge) from this process; with several
    # instances any number may, as a lease row picks one per job.
    scheduler: bool = True
    # Where this service is reachable from outside: officers' photos on cards link here.
    # None: the council file's council.public_url (else http://localhost:3978).
    public_url: str | None = None
    # Host suffixes officers' photos may be fetched from (https, public addresses only);
    # the activity's serviceUrl host is always allowed. See responder/bot/attachment_policy.
    attachment_hosts: tuple[str, ...] = DEFAULT_ATTACHMENT_HOSTS
    # Development only (refused in production): scheme://host:port origins that may serve
    # photos over http or from this machine, e.g. a local stand-in for SharePoint.
    dev_attachment_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        if env is None:
            if dotenv:
                load_dotenv(override=False)
            env = dict(os.environ)
        return cls(
            port=_int(env, "PORT", 3978),
            host=env.get("HOST", "0.0.0.0"),
            database_url=env.get("DATABASE_URL") or DEFAULT_URL,
            config_path=Path(env.get("RESPONDER_CONFIG") or DEFAULT_CONFIG),
            app_id=env.get("MicrosoftAppId", ""),
            app_password=env.get("MicrosoftAppPassword", ""),
            app_tenant_id=env.get("MicrosoftAppTenantId", ""),
            app_type=env.get("MicrosoftAppType", "MultiTenant"),
            bot_openid_metadata_url=env.get("BOT_OPENID_METADATA_URL", ""),
            notify_api_key=env.get("NOTIFY_API_KEY", ""),
            notify_base_url=env.get("NOTIFY_BASE_URL") or cls.notify_base_url,
            notify_callback_token=env.get("NOTIFY_CALLBACK_TOKEN", ""),
            notify_per_minute=_int(env, "NOTIFY_PER_MINUTE", 2900),
            intake_keys=parse_intake_keys(env.get("RESPONDER_INTAKE_KEYS", "")),
            environment=env.get("RESPONDER_ENV", "development"),
            background=env.get("RESPONDER_BACKGROUND", "on").lower() not in ("off", "0", "false"),
            scheduler=env.get("RESPONDER_SCHEDULER", "on").lower() not in ("off", "0", "false"),
            public_url=(
                _public_url(env["RESPONDER_PUBLIC_URL"])
                if env.get("RESPONDER_PUBLIC_URL")
                else None
            ),
            attachment_hosts=(
                _listed(env, "RESPONDER_ATTACHMENT_HOSTS", parse_host_suffixes)
                or DEFAULT_ATTACHMENT_HOSTS
            ),
            dev_attachment_origins=_listed(
                env, "RESPONDER_DEV_ATTACHMENT_ORIGINS", parse_dev_origins
            ),
        )


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}: not a whole number: {value!r}") from None
    if number <= 0:
        raise SettingsError(f"{name}: must be positive, not {number}")
    return number


def _listed(
    env: dict[str, str], name: str, parse: Callable[[str], tuple[str, ...]]
) -> tuple[str, ...]:
    try:
        return parse(env.get(name, ""))
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _public_url(value: str) -> str:
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SettingsError(f"RESPONDER_PUBLIC_URL: expected http(s)://host[/path], not {value!r}")
    return url


def parse_intake_keys(value: str) -> dict[str, str]:
    """``name:secret,name2:secret2`` -> {name: secret}; refuses weak or malformed entries."""
    keys: dict[str, str] = {}
    for i, entry in enumerate(filter(None, (e.strip() for e in value.split(",")))):
        name, sep, secret = entry.partition(":")
        if not sep or not name or not secret:
            raise SettingsError(f"RESPONDER_INTAKE_KEYS[{i}]: expected name:secret")
        if len(secret) < 8:
            raise SettingsError(f"RESPONDER_INTAKE_KEYS[{i}] ({name}): secret under 8 characters")
        if name in keys:
            raise SettingsError(f"RESPONDER_INTAKE_KEYS[{i}]: key name {name!r} given twice")
        keys[name] = secret
    return keys
