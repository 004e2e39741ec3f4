"""Settings from the environment (and a .env file), under the names DESIGN.md promises."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from dotenv import load_dotenv

from responder.bot.attachment_policy import DEFAULT_ATTACHMENT_HOSTS
from responder.domain.hosts import parse_host_suffixes
from responder.fetching.guard import parse_dev_origins
from responder.store.db import DEFAULT_URL

DEFAULT_CONFIG = Path(__file__).with_name("defaults") / "council.yaml"


class SettingsError(ValueError):
    pass


# Which SDK receives Teams' activities and signs the bot's calls (responder/bot/runtime.py):
# the Microsoft 365 Agents SDK by default; botbuilder 4.17 with the responder[botbuilder] extra.
TeamsRuntimeName = Literal["agents", "botbuilder"]


class AuthType(StrEnum):
    """How the bot proves who it is to Microsoft Entra, spelt as the Agents SDK spells it
    (``microsoft_agents.hosting.core.authorization.auth_types.AuthTypes``, 1.9; note its
    lower-case ``certificate``). Bot Framework's ``MicrosoftAppType`` maps onto these."""

    CLIENT_SECRET = "ClientSecret"
    CERTIFICATE = "certificate"
    USER_MANAGED_IDENTITY = "UserManagedIdentity"
    SYSTEM_MANAGED_IDENTITY = "SystemManagedIdentity"
    FEDERATED_CREDENTIALS = "FederatedCredentials"


# The Agents SDK reads its service connection from these (its env loader splits names on
# "__": CONNECTIONS -> SERVICE_CONNECTION -> SETTINGS -> CLIENTID, ...).
AGENTS_PREFIX = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
# The bot's credentials under both sets of names: (what, Bot Framework name, Agents SDK name).
CREDENTIAL_NAMES = {
    "client id": ("MicrosoftAppId", AGENTS_PREFIX + "CLIENTID"),
    "client secret": ("MicrosoftAppPassword", AGENTS_PREFIX + "CLIENTSECRET"),
    "tenant id": ("MicrosoftAppTenantId", AGENTS_PREFIX + "TENANTID"),
    "authentication type": ("MicrosoftAppType", AGENTS_PREFIX + "AUTHTYPE"),
}
# Bot Framework's MicrosoftAppType values (compared ignoring case, as botbuilder does).
_APP_TYPES = {
    "multitenant": ("MultiTenant", AuthType.CLIENT_SECRET),
    "singletenant": ("SingleTenant", AuthType.CLIENT_SECRET),
    "userassignedmsi": ("UserAssignedMSI", AuthType.USER_MANAGED_IDENTITY),
}


@dataclass(frozen=True)
class Settings:
    port: int = 3978
    host: str = "0.0.0.0"
    database_url: str = DEFAULT_URL
    config_path: Path = DEFAULT_CONFIG
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_tenant_id: str = ""
    # Bot Framework's MicrosoftAppType, as the botbuilder runtime is given it; derived from
    # auth_type and the tenant when only the Agents SDK's names are set ("" when botbuilder
    # has no equivalent, e.g. a certificate).
    app_type: str = "MultiTenant"
    # The same choice in the Agents SDK's terms, whichever names set it.
    auth_type: AuthType = AuthType.CLIENT_SECRET
    # The Agents SDK's CERTPFXFILE (AUTHTYPE=certificate) and FEDERATEDCLIENTID
    # (AUTHTYPE=FederatedCredentials: the managed identity that vouches for the app).
    cert_pfx_file: str = ""
    federated_client_id: str = ""
    # Where Bot Framework publishes its token signing keys: a test double's door (a fake
    # on 127.0.0.1), refused with RESPONDER_ENV=production.
    bot_openid_metadata_url: str = ""
    teams_runtime: TeamsRuntimeName = "agents"
    notify_api_key: str = field(default="", repr=False)
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    notify_callback_token: str = field(default="", repr=False)
    # GOV.UK Notify allows 3,000 messages a minute per key; stay a little under it.
    notify_per_minute: int = 2900
    # Intake credentials: key name (recorded as the source system) -> secret.
    intake_keys: dict[str, str] = field(default_factory=dict, repr=False)
    # Read keys (GET /api/tasks, CSV, OData, histories): key name -> secret; never intake.
    read_keys: dict[str, str] = field(default_factory=dict, repr=False)
    # Subscribers' signing secrets: subscriber name (the council file's) -> secret.
    webhook_secrets: dict[str, str] = field(default_factory=dict, repr=False)
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
    # The web pages (responder/web/). Signs session cookies and residents' feedback links:
    # required in production; in development a random one per process (links and sessions
    # then last until a restart).
    secret_key: str = field(default="", repr=False)
    # Entra ID sign-in for the pages and the Teams tab: the app registration (by default
    # the bot's own, MicrosoftAppId / MicrosoftAppPassword) and its tenant.
    web_client_id: str = ""
    web_client_secret: str = field(default="", repr=False)
    web_tenant_id: str = ""
    # Tests only (refused in production): an OpenID issuer other than Entra ID's
    # https://login.microsoftonline.com/{tenant}/v2.0, e.g. a fake on 127.0.0.1.
    web_authority: str = ""
    # The map's tile service key (e.g. the OS Maps API's), added by the server-side tile
    # proxy so it never reaches a browser.
    map_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        if env is None:
            if dotenv:
                load_dotenv(override=False)
            env = dict(os.environ)
        bot = bot_credentials(env)
        return cls(
            port=_int(env, "PORT", 3978),
            host=env.get("HOST", "0.0.0.0"),
            database_url=env.get("DATABASE_URL") or DEFAULT_URL,
            config_path=Path(env.get("RESPONDER_CONFIG") or DEFAULT_CONFIG),
            app_id=bot.client_id,
            app_password=bot.client_secret,
            app_tenant_id=bot.tenant_id,
            app_type=bot.app_type,
            auth_type=bot.auth_type,
            cert_pfx_file=bot.cert_pfx_file,
            federated_client_id=bot.federated_client_id,
            bot_openid_metadata_url=env.get("BOT_OPENID_METADATA_URL", ""),
            teams_runtime=_teams_runtime(env.get("RESPONDER_TEAMS_RUNTIME", "")),
            notify_api_key=env.get("NOTIFY_API_KEY", ""),
            notify_base_url=env.get("NOTIFY_BASE_URL") or cls.notify_base_url,
            notify_callback_token=env.get("NOTIFY_CALLBACK_TOKEN", ""),
            notify_per_minute=_int(env, "NOTIFY_PER_MINUTE", 2900),
            intake_keys=parse_intake_keys(env.get("RESPONDER_INTAKE_KEYS", "")),
            read_keys=parse_intake_keys(env.get("RESPONDER_READ_KEYS", ""), "RESPONDER_READ_KEYS"),
            webhook_secrets=parse_intake_keys(
                env.get("RESPONDER_WEBHOOK_SECRETS", ""), "RESPONDER_WEBHOOK_SECRETS"
            ),
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
            secret_key=env.get("RESPONDER_SECRET_KEY", ""),
            web_client_id=env.get("RESPONDER_WEB_CLIENT_ID") or bot.client_id,
            web_client_secret=env.get("RESPONDER_WEB_CLIENT_SECRET") or bot.client_secret,
            web_tenant_id=env.get("RESPONDER_WEB_TENANT_ID") or bot.tenant_id,
            web_authority=env.get("RESPONDER_WEB_AUTHORITY", ""),
            map_key=env.get("RESPONDER_MAP_KEY", ""),
        )


@dataclass(frozen=True)
class BotCredentials:
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    tenant_id: str = ""
    auth_type: AuthType = AuthType.CLIENT_SECRET
    app_type: str = "MultiTenant"
    cert_pfx_file: str = ""
    federated_client_id: str = ""


def bot_credentials(env: Mapping[str, str]) -> BotCredentials:
    """The bot's credentials from either set of names.

    Each value may be given under its Bot Framework name or its Agents SDK name. When both
    are set they must agree (ids ignoring case; the authentication type by meaning, e.g.
    ``SingleTenant`` and ``ClientSecret``), and the Agents SDK's value is kept; when they
    disagree nothing starts and the error names both variables (never a secret's value).
    An empty variable counts as unset.
    """
    value: dict[str, str] = {}
    for what, (bf_name, agents_name) in CREDENTIAL_NAMES.items():
        if what == "authentication type":
            continue
        bf, agents = env.get(bf_name, "").strip(), env.get(agents_name, "").strip()
        secret = what == "client secret"
        if bf and agents and (agents != bf if secret else agents.lower() != bf.lower()):
            shown = "" if secret else f" ({bf!r} and {agents!r})"
            raise SettingsError(
                f"{bf_name} and {agents_name} are both set, to different {what}s{shown}: "
                "set one of them, or both alike"
            )
        value[what] = agents or bf

    bf_name, agents_name = CREDENTIAL_NAMES["authentication type"]
    app_type = _app_type(bf_name, env.get(bf_name, "").strip())
    auth_type = _auth_type(agents_name, env.get(agents_name, "").strip())
    if app_type and auth_type and app_type[1] is not auth_type:
        raise SettingsError(
            f"{bf_name}={app_type[0]} and {agents_name}={auth_type.value} disagree "
            f"({app_type[0]} means {app_type[1].value}): set one of them, or both alike"
        )
    auth_type = auth_type or (app_type[1] if app_type else AuthType.CLIENT_SECRET)
    if app_type:
        bf_type = app_type[0]
    elif not any(env.get(agents_name, "").strip() for _, agents_name in CREDENTIAL_NAMES.values()):
        bf_type = "MultiTenant"  # Bot Framework's names only: botbuilder's default, as before
    else:  # botbuilder's name for the Agents SDK's choice, for the runtime that still uses it
        bf_type = {
            AuthType.CLIENT_SECRET: "SingleTenant" if value["tenant id"] else "MultiTenant",
            AuthType.USER_MANAGED_IDENTITY: "UserAssignedMSI",
        }.get(auth_type, "")

    credentials = BotCredentials(
        client_id=value["client id"],
        client_secret=value["client secret"],
        tenant_id=value["tenant id"],
        auth_type=auth_type,
        app_type=bf_type,
        cert_pfx_file=env.get(AGENTS_PREFIX + "CERTPFXFILE", "").strip(),
        federated_client_id=env.get(AGENTS_PREFIX + "FEDERATEDCLIENTID", "").strip(),
    )
    # What the Agents SDK itself insists on (AgentAuthConfiguration._validate), checked now
    # so that a missing value stops start-up rather than the first card.
    if auth_type is AuthType.CERTIFICATE and not credentials.cert_pfx_file:
        raise SettingsError(
            f"{agents_name}=certificate needs {AGENTS_PREFIX}CERTPFXFILE "
            "(the path of the certificate's PFX file)"
        )
    if auth_type is AuthType.FEDERATED_CREDENTIALS and not credentials.federated_client_id:
        raise SettingsError(
            f"{agents_name}=FederatedCredentials needs {AGENTS_PREFIX}FEDERATEDCLIENTID "
            "(the client id of the managed identity that vouches for the bot)"
        )
    return credentials


def _app_type(name: str, value: str) -> tuple[str, AuthType] | None:
    """Bot Framework's ``MicrosoftAppType`` -> (its canonical spelling, the auth type)."""
    if not value:
        return None
    try:
        return _APP_TYPES[value.lower()]
    except KeyError:
        expected = ", ".join(spelling for spelling, _ in _APP_TYPES.values())
        raise SettingsError(f"{name}: expected one of {expected}, not {value!r}") from None


def _auth_type(name: str, value: str) -> AuthType | None:
    """The Agents SDK's ``AUTHTYPE`` (ignoring case) -> the auth type, in the SDK's spelling."""
    if not value:
        return None
    for auth_type in AuthType:
        if auth_type.value.lower() == value.lower():
            return auth_type
    expected = ", ".join(auth_type.value for auth_type in AuthType)
    raise SettingsError(f"{name}: expected one of {expected}, not {value!r}")


def _teams_runtime(value: str) -> TeamsRuntimeName:
    wanted = value.strip().lower() or "agents"
    for name in get_args(TeamsRuntimeName):
        if name == wanted:
            return name
    raise SettingsError(
        f"RESPONDER_TEAMS_RUNTIME={value!r} is not one of: agents (the default), botbuilder"
    )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
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
    env: Mapping[str, str], name: str, parse: Callable[[str], tuple[str, ...]]
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


def parse_intake_keys(value: str, setting: str = "RESPONDER_INTAKE_KEYS") -> dict[str, str]:
    """``name:secret,name2:secret2`` -> {name: secret}; refuses weak or malformed entries."""
    keys: dict[str, str] = {}
    for i, entry in enumerate(filter(None, (e.strip() for e in value.split(",")))):
        name, sep, secret = entry.partition(":")
        if not sep or not name or not secret:
            raise SettingsError(f"{setting}[{i}]: expected name:secret")
        if len(secret) < 8:
            raise SettingsError(f"{setting}[{i}] ({name}): secret under 8 characters")
        if name in keys:
            raise SettingsError(f"{setting}[{i}]: key name {name!r} given twice")
        keys[name] = secret
    return keys
