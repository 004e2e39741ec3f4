"""The bot's credentials under the Bot Framework's names and the Agents SDK's (issue 15 item 4).

Settings are built from explicit environments (``Settings.from_env(env)`` reads no ``.env``
file then); the start-up refusals go through ``build_app`` as ``responder serve`` does.
"""

from __future__ import annotations

import pytest

from responder.app import StartupError, build_app
from responder.settings import AuthType, Settings, SettingsError

AGENTS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
APP_ID = "3f2a8c1e-5b7d-4e9f-a1c3-0d2e4f6a8b9c"
TENANT = "9c8b7a6f-5e4d-4c3b-8a2f-1e0d9c8b7a6f"

# (Settings field, Bot Framework name, Agents SDK name, a value)
CREDENTIALS = [
    ("app_id", "MicrosoftAppId", AGENTS + "CLIENTID", APP_ID),
    ("app_password", "MicrosoftAppPassword", AGENTS + "CLIENTSECRET", "s3cret~value"),
    ("app_tenant_id", "MicrosoftAppTenantId", AGENTS + "TENANTID", TENANT),
]


def with_names(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def test_nothing_set_is_an_unauthenticated_multi_tenant_bot():
    s = with_names({})
    assert (s.app_id, s.app_password, s.app_tenant_id) == ("", "", "")
    assert (s.app_type, s.auth_type) == ("MultiTenant", AuthType.CLIENT_SECRET)


@pytest.mark.parametrize("field, bf_name, agents_name, value", CREDENTIALS)
@pytest.mark.parametrize("use_agents_name", [False, True], ids=["bot-framework", "agents-sdk"])
def test_each_name_alone_sets_its_value(field, bf_name, agents_name, value, use_agents_name):
    s = with_names({agents_name if use_agents_name else bf_name: value})
    assert getattr(s, field) == value


@pytest.mark.parametrize("field, bf_name, agents_name, value", CREDENTIALS)
def test_an_empty_variable_counts_as_unset(field, bf_name, agents_name, value):
    assert getattr(with_names({bf_name: value, agents_name: ""}), field) == value
    assert getattr(with_names({bf_name: "", agents_name: value}), field) == value


def test_agents_sdk_names_alone_give_the_same_settings_as_bot_framework_names():
    bot_framework = with_names(
        {
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppPassword": "s3cret~value",
            "MicrosoftAppTenantId": TENANT,
            "MicrosoftAppType": "SingleTenant",
        }
    )
    agents_sdk = with_names(
        {
            AGENTS + "CLIENTID": APP_ID,
            AGENTS + "CLIENTSECRET": "s3cret~value",
            AGENTS + "TENANTID": TENANT,
            AGENTS + "AUTHTYPE": "ClientSecret",
        }
    )
    assert bot_framework == agents_sdk
    assert agents_sdk.app_type == "SingleTenant"
    assert agents_sdk.auth_type is AuthType.CLIENT_SECRET


def test_both_names_agreeing_are_accepted_and_the_agents_sdk_value_is_kept():
    s = with_names(
        {
            "MicrosoftAppId": APP_ID.upper(),
            AGENTS + "CLIENTID": APP_ID,
            "MicrosoftAppPassword": "s3cret~value",
            AGENTS + "CLIENTSECRET": "s3cret~value",
            "MicrosoftAppTenantId": TENANT,
            AGENTS + "TENANTID": TENANT,
            "MicrosoftAppType": "singletenant",
            AGENTS + "AUTHTYPE": "ClientSecret",
        }
    )
    assert (s.app_id, s.app_password, s.app_tenant_id) == (APP_ID, "s3cret~value", TENANT)
    assert (s.app_type, s.auth_type) == ("SingleTenant", AuthType.CLIENT_SECRET)


@pytest.mark.parametrize("field, bf_name, agents_name, value", CREDENTIALS)
def test_both_names_disagreeing_are_refused_naming_both(field, bf_name, agents_name, value):
    with pytest.raises(SettingsError) as refused:
        with_names({bf_name: value, agents_name: value + "0"})
    message = str(refused.value)
    assert bf_name in message
    assert agents_name in message
    if field == "app_password":
        assert value not in message  # a secret is never repeated, even in an error


def test_a_secret_differing_only_in_case_is_a_different_secret():
    with pytest.raises(SettingsError, match="MicrosoftAppPassword"):
        with_names({"MicrosoftAppPassword": "Secret", AGENTS + "CLIENTSECRET": "secret"})


@pytest.mark.parametrize(
    "app_type, auth_type",
    [
        ("MultiTenant", "UserManagedIdentity"),
        ("SingleTenant", "certificate"),
        ("UserAssignedMSI", "ClientSecret"),
        ("UserAssignedMSI", "SystemManagedIdentity"),
    ],
)
def test_disagreeing_authentication_types_are_refused_naming_both(app_type, auth_type):
    env = {
        "MicrosoftAppType": app_type,
        AGENTS + "AUTHTYPE": auth_type,
        AGENTS + "CERTPFXFILE": "/etc/responder/bot.pfx",
    }
    with pytest.raises(SettingsError) as refused:
        with_names(env)
    assert "MicrosoftAppType" in str(refused.value)
    assert AGENTS + "AUTHTYPE" in str(refused.value)


@pytest.mark.parametrize(
    "app_type, tenant, auth_type",
    [
        ("MultiTenant", "", AuthType.CLIENT_SECRET),
        ("SingleTenant", TENANT, AuthType.CLIENT_SECRET),
        ("UserAssignedMSI", TENANT, AuthType.USER_MANAGED_IDENTITY),
    ],
)
def test_bot_framework_app_types_map_to_agents_sdk_auth_types(app_type, tenant, auth_type):
    for spelling in (app_type, app_type.lower(), app_type.upper()):  # botbuilder ignores case
        s = with_names({"MicrosoftAppType": spelling, "MicrosoftAppTenantId": tenant})
        assert (s.app_type, s.auth_type) == (app_type, auth_type)


def test_an_unknown_bot_framework_app_type_is_refused():
    with pytest.raises(SettingsError, match="MicrosoftAppType: expected one of MultiTenant"):
        with_names({"MicrosoftAppType": "Certificate"})


@pytest.mark.parametrize(
    "value, auth_type, app_type",
    [
        ("ClientSecret", AuthType.CLIENT_SECRET, "SingleTenant"),
        ("clientsecret", AuthType.CLIENT_SECRET, "SingleTenant"),
        ("certificate", AuthType.CERTIFICATE, ""),
        ("Certificate", AuthType.CERTIFICATE, ""),
        ("UserManagedIdentity", AuthType.USER_MANAGED_IDENTITY, "UserAssignedMSI"),
        ("SystemManagedIdentity", AuthType.SYSTEM_MANAGED_IDENTITY, ""),
        ("FederatedCredentials", AuthType.FEDERATED_CREDENTIALS, ""),
    ],
)
def test_agents_sdk_auth_types_in_any_case(value, auth_type, app_type):
    s = with_names(
        {
            AGENTS + "CLIENTID": APP_ID,
            AGENTS + "TENANTID": TENANT,
            AGENTS + "AUTHTYPE": value,
            AGENTS + "CERTPFXFILE": "/etc/responder/bot.pfx",
            AGENTS + "FEDERATEDCLIENTID": "b1c2d3e4-0000-4000-8000-000000000001",
        }
    )
    assert s.auth_type is auth_type
    assert s.auth_type.value == auth_type.value  # the SDK's own spelling, whatever was typed
    assert s.app_type == app_type  # botbuilder's name for it, where it has one


def test_bot_framework_names_without_a_type_stay_multi_tenant_as_before():
    s = with_names({"MicrosoftAppId": APP_ID, "MicrosoftAppTenantId": TENANT})
    assert (s.app_type, s.auth_type) == ("MultiTenant", AuthType.CLIENT_SECRET)


def test_agents_sdk_names_with_a_tenant_are_single_tenant_for_botbuilder():
    s = with_names({AGENTS + "CLIENTID": APP_ID, AGENTS + "TENANTID": TENANT})
    assert (s.app_type, s.auth_type) == ("SingleTenant", AuthType.CLIENT_SECRET)


def test_a_client_secret_without_a_tenant_is_multi_tenant_for_botbuilder():
    s = with_names({AGENTS + "CLIENTID": APP_ID, AGENTS + "AUTHTYPE": "ClientSecret"})
    assert s.app_type == "MultiTenant"


@pytest.mark.parametrize("value", ["CertificateSubjectName", "EntraAuthSideCar", "password"])
def test_an_auth_type_responder_does_not_support_is_refused_with_the_choices(value):
    with pytest.raises(SettingsError) as refused:
        with_names({AGENTS + "AUTHTYPE": value})
    assert f"{AGENTS}AUTHTYPE: expected one of ClientSecret, certificate" in str(refused.value)


def test_a_certificate_needs_its_file_and_federated_credentials_their_identity():
    with pytest.raises(SettingsError, match=f"{AGENTS}CERTPFXFILE"):
        with_names({AGENTS + "AUTHTYPE": "certificate"})
    with pytest.raises(SettingsError, match=f"{AGENTS}FEDERATEDCLIENTID"):
        with_names({AGENTS + "AUTHTYPE": "FederatedCredentials"})
    s = with_names(
        {AGENTS + "AUTHTYPE": "certificate", AGENTS + "CERTPFXFILE": "/etc/responder/bot.pfx"}
    )
    assert s.cert_pfx_file == "/etc/responder/bot.pfx"


def test_the_secret_is_not_in_the_settings_repr():
    assert "s3cret~value" not in repr(with_names({AGENTS + "CLIENTSECRET": "s3cret~value"}))


# -- start-up (build_app), whichever names are used ------------------------------------------


def _production(database_url: str, env: dict[str, str]) -> Settings:
    return Settings.from_env(
        {
            "RESPONDER_ENV": "production",
            "RESPONDER_SECRET_KEY": "k" * 43,  # the web pages' (responder/web/routes.py)
            "DATABASE_URL": database_url,
            **env,
        }
    )


def test_production_refuses_to_start_without_credentials(database_url):
    with pytest.raises(StartupError) as refused:
        build_app(_production(database_url, {}))
    assert "MicrosoftAppId" in str(refused.value)
    assert AGENTS + "CLIENTID" in str(refused.value)


@pytest.mark.parametrize("use_agents_names", [False, True], ids=["bot-framework", "agents-sdk"])
def test_production_refuses_a_client_id_without_its_secret(database_url, use_agents_names):
    name = AGENTS + "CLIENTID" if use_agents_names else "MicrosoftAppId"
    with pytest.raises(StartupError) as refused:
        build_app(_production(database_url, {name: APP_ID}))
    assert "MicrosoftAppPassword" in str(refused.value)
    assert AGENTS + "CLIENTSECRET" in str(refused.value)


@pytest.mark.parametrize("use_agents_names", [False, True], ids=["bot-framework", "agents-sdk"])
def test_production_starts_with_credentials_under_either_names(database_url, use_agents_names):
    if use_agents_names:
        env = {
            AGENTS + "CLIENTID": APP_ID,
            AGENTS + "CLIENTSECRET": "s3cret~value",
            AGENTS + "TENANTID": TENANT,
            AGENTS + "AUTHTYPE": "ClientSecret",
        }
    else:
        env = {
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppPassword": "s3cret~value",
            "MicrosoftAppTenantId": TENANT,
            "MicrosoftAppType": "SingleTenant",
        }
    build_app(_production(database_url, env))  # builds; nothing is started or connected


@pytest.mark.parametrize(
    "env",
    [
        {"MicrosoftAppType": "UserAssignedMSI"},
        {AGENTS + "AUTHTYPE": "SystemManagedIdentity"},
        {AGENTS + "AUTHTYPE": "certificate", AGENTS + "CERTPFXFILE": "/etc/responder/bot.pfx"},
    ],
    ids=["user-assigned-msi", "system-managed-identity", "certificate"],
)
def test_auth_types_only_the_agents_sdk_can_use_start_on_it_and_refuse_botbuilder(
    database_url, env
):
    credentials = {"MicrosoftAppId": APP_ID, "MicrosoftAppTenantId": TENANT}
    for environment in ("development", "production"):
        base = {"RESPONDER_ENV": environment, "DATABASE_URL": database_url} | credentials | env
        base["RESPONDER_SECRET_KEY"] = "k" * 43  # the web pages' (responder/web/routes.py)
        build_app(Settings.from_env(base))  # the default runtime signs in every such way
        with pytest.raises(StartupError, match="not supported by the botbuilder runtime"):
            build_app(Settings.from_env(base | {"RESPONDER_TEAMS_RUNTIME": "botbuilder"}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "agents"), ("agents", "agents"), ("Botbuilder", "botbuilder"), (" AGENTS ", "agents")],
)
def test_the_teams_runtime_is_chosen_by_name(value, expected):
    assert Settings.from_env({"RESPONDER_TEAMS_RUNTIME": value}).teams_runtime == expected


def test_an_unknown_teams_runtime_is_refused_by_name():
    with pytest.raises(SettingsError, match="RESPONDER_TEAMS_RUNTIME='teams-ai'.*agents"):
        Settings.from_env({"RESPONDER_TEAMS_RUNTIME": "teams-ai"})


def test_single_tenant_without_a_tenant_is_refused_at_start_up(database_url):
    env = {
        "DATABASE_URL": database_url,
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": "s3cret~value",
        "MicrosoftAppType": "SingleTenant",
    }
    with pytest.raises(StartupError, match="MicrosoftAppTenantId"):
        build_app(Settings.from_env(env))
