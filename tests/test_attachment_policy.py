"""The attachment URL policy (pure) and the resolver that checks addresses after DNS."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from responder.bot.attachment_policy import DEFAULT_ATTACHMENT_HOSTS, AttachmentPolicy
from responder.domain.hosts import host_suffix, parse_host_suffixes, suffix_match
from responder.fetching.guard import (
    AddressRefused,
    GuardedResolver,
    URLRefused,
    address_refusal,
    dev_origin,
)

TEAMS = "https://smba.trafficmanager.net/uk/"
LOCAL = "http://127.0.0.1:3979/"  # the Emulator's (or the tests') Bot Connector
POLICY = AttachmentPolicy()


def refused(url: str, service_url: str = TEAMS, policy: AttachmentPolicy = POLICY) -> str:
    with pytest.raises(URLRefused) as caught:
        policy.check(url, service_url)
    return caught.value.reason


# -- hosts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://sample-my.sharepoint.com/personal/bob/Documents/IMG_1.jpg?tempauth=x",
        "https://sharepoint.com/x.jpg",
        "https://SAMPLE-MY.SharePoint.COM/x.jpg",  # hosts are case-insensitive
        "https://sample-my.sharepoint.com./x.jpg",  # the same host, fully qualified
        "https://contoso.sharepoint.us/x.jpg",
        "https://eu-api.asm.skype.com/v1/objects/0-weu-d1-x/views/imgo",
        "https://smba.infra.gcc.teams.microsoft.com/v3/attachments/1/views/original",
        "https://graph.microsoft.com/v1.0/chats/1/messages/2/hostedContents/3/$value",
        "https://ｓample-my.sharepoint.com/x.jpg",  # full width: yarl connects to the ASCII
    ],
)
def test_teams_hosts_are_allowed_over_https(url):
    hop = POLICY.check(url, TEAMS)
    assert hop.guarded and not hop.token
    assert hop.url.raw_host.removesuffix(".").endswith(
        ("sharepoint.com", "sharepoint.us", "skype.com", "microsoft.com", "trafficmanager.net")
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evilsharepoint.com/x.jpg", "host not allowed"),  # a suffix, not a substring
        ("https://sharepoint.com.evil.example/x.jpg", "host not allowed"),
        ("https://sharepoint.com@evil.example/x.jpg", "credentials in URL"),
        ("https://evil.example@sample-my.sharepoint.com/x.jpg", "credentials in URL"),
        ("https://bob:pw@sample-my.sharepoint.com/x.jpg", "credentials in URL"),
        ("https://:pw@sample-my.sharepoint.com/x.jpg", "credentials in URL"),
        ("http://sample-my.sharepoint.com/x.jpg", "not https"),
        ("ftp://sample-my.sharepoint.com/x.jpg", "not an http(s) URL"),
        ("//sample-my.sharepoint.com/x.jpg", "not an http(s) URL"),
        ("https:///x.jpg", "not an http(s) URL"),
        ("https://evil.example\\@sample-my.sharepoint.com/", "malformed URL"),
        ("https://sample-my.sharepoint.com:99999/", "malformed URL"),
        ("https://exa mple.sharepoint.com/", "not a valid host name"),
        ("https://a..sharepoint.com/", "not a valid host name"),
        ("", "no URL"),
    ],
)
def test_other_hosts_and_odd_urls_are_refused(url, reason):
    assert refused(url) == reason


def test_suffix_matching():
    assert suffix_match("a.b.sharepoint.com", ["sharepoint.com"])
    assert suffix_match("sharepoint.com", ["sharepoint.com"])
    assert not suffix_match("evilsharepoint.com", ["sharepoint.com"])
    assert not suffix_match("sharepoint.com.evil", ["sharepoint.com"])
    assert not suffix_match("com", ["sharepoint.com"])


def test_host_suffix_entries():
    assert host_suffix("*.SharePoint.com") == "sharepoint.com"
    assert host_suffix(".sharepoint.com.") == "sharepoint.com"
    assert host_suffix(" localhost ") == "localhost"
    assert parse_host_suffixes("a.example, *.a.example,,b.example") == ("a.example", "b.example")
    for bad in ("", "*", "https://a.example", "a.example:443", "a.example/x", "a..b", "127.1"):
        with pytest.raises(ValueError):
            host_suffix(bad)


def test_replacing_the_hosts_drops_the_defaults():
    policy = AttachmentPolicy(hosts=("files.example.gov.uk",))
    assert policy.check("https://a.files.example.gov.uk/x", TEAMS).guarded
    assert refused("https://sample-my.sharepoint.com/x", policy=policy) == "host not allowed"
    assert AttachmentPolicy().hosts == DEFAULT_ATTACHMENT_HOSTS


# -- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/", "loopback address"),
        ("https://127.8.9.10:8443/", "loopback address"),
        ("https://169.254.169.254/latest/meta-data", "link-local address"),
        ("https://10.0.0.1/", "private address"),
        ("https://172.16.5.4/", "private address"),
        ("https://192.168.1.1/", "private address"),
        ("https://100.64.0.1/", "non-public address"),  # carrier-grade NAT
        ("https://0.0.0.0/", "unspecified address"),
        ("https://224.0.0.1/", "multicast address"),
        ("https://240.0.0.1/", "private address"),  # reserved: Python lists it as private
        ("https://[::1]/", "loopback address"),
        ("https://[0:0:0:0:0:0:0:1]:8443/", "loopback address"),
        ("https://[::]/", "unspecified address"),
        ("https://[::ffff:127.0.0.1]/", "loopback address"),  # IPv4-mapped
        ("https://[::ffff:7f00:1]/", "loopback address"),
        ("https://[::FFFF:169.254.169.254]/", "link-local address"),
        ("https://[::ffff:10.1.2.3]/", "private address"),
        ("https://[fe80::1]/", "link-local address"),
        ("https://[fe80::1%25eth0]/", "link-local address"),
        ("https://[fd00::1]/", "private address"),
        ("https://[ff02::1]/", "multicast address"),
        ("https://[2002:7f00:1::]/", "loopback address"),  # 6to4 of 127.0.0.1
        ("https://[64:ff9b::a9fe:a9fe]/", "link-local address"),  # NAT64 of 169.254.169.254
        # Numbers a resolver would read as 127.0.0.1: refused as they are.
        ("https://127.1/", "malformed IP address"),
        ("https://2130706433/", "malformed IP address"),
        ("https://0x7f.0.0.1/", "not a valid host name"),
        ("https://0177.0.0.1/", "malformed IP address"),
    ],
)
def test_internal_ip_literals_are_refused(url, reason):
    assert refused(url) == reason
    # Even as the activity's own (https) serviceUrl: only an http one is exempt.
    assert refused(url, service_url=url) == reason


def test_public_ip_literals_only_as_the_service_host():
    assert refused("https://8.8.8.8/x") == "host not allowed"
    hop = POLICY.check("https://52.114.0.1/v3/attachments/1", "https://52.114.0.1/")
    assert hop.guarded and hop.token


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("::ffff:127.0.0.1", "loopback address"),
        ("fe80::1%2", "link-local address"),
        ("192.0.2.1", "private address"),  # documentation range
        ("not an address", "not an IP address"),
    ],
)
def test_address_refusal(address, reason):
    assert address_refusal(address) == reason


# -- the serviceUrl: the token, and the local exemption ------------------------------------


def test_token_goes_to_the_service_origin_only():
    assert POLICY.check(f"{TEAMS}v3/attachments/1/views/original", TEAMS).token
    assert POLICY.check("https://SMBA.trafficmanager.net:443/uk/v3/x", TEAMS).token
    for url in (
        "https://smba.trafficmanager.net:8443/uk/v3/x",  # another port
        "https://eu.smba.trafficmanager.net/uk/v3/x",  # another host, however close
        "https://sample-my.sharepoint.com/x.jpg",
    ):
        assert not POLICY.check(url, TEAMS).token, url
    assert refused("http://smba.trafficmanager.net/uk/v3/x") == "not https"


def test_a_local_http_bot_connector_is_exempt_at_its_exact_origin():
    hop = POLICY.check("http://127.0.0.1:3979/v3/attachments/1/views/original", LOCAL)
    assert (hop.guarded, hop.token) == (False, True)
    assert refused("http://127.0.0.1:3980/x.jpg", LOCAL) == "not https"
    assert refused("https://127.0.0.1:3979/x.jpg", LOCAL) == "loopback address"
    assert refused("http://localhost:3979/x.jpg", LOCAL) == "not https"
    assert refused("https://127.0.0.1:3979/x.jpg", "not a url") == "loopback address"


def test_dev_origins_are_exempt_exactly():
    policy = AttachmentPolicy(dev_origins=("http://127.0.0.1:8080", "HTTP://LocalHost:9000/"))
    assert policy.dev_origins == ("http://127.0.0.1:8080", "http://localhost:9000")
    hop = policy.check("http://127.0.0.1:8080/files/a.jpg", TEAMS)
    assert (hop.guarded, hop.token) == (False, False)
    assert not policy.check("http://localhost:9000/a.jpg", TEAMS).guarded
    assert refused("http://127.0.0.1:8081/a.jpg", policy=policy) == "not https"
    assert refused("https://127.0.0.1:8080/a.jpg", policy=policy) == "loopback address"
    assert dev_origin("http://[::1]:8080") == "http://[::1]:8080"
    for bad in ("127.0.0.1:8080", "http://h:1/files", "http://u@h:1", "ftp://h:1", "http://h:1#x"):
        with pytest.raises(ValueError):
            dev_origin(bad)


# -- the resolver, against real resolution ---------------------------------------------------


class Answers(AbstractResolver):
    """A DNS that answers what it is told (for mixes the system resolver will not give)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("family", [socket.AF_UNSPEC, socket.AF_INET])
async def test_guarded_resolver_refuses_localhost(family):
    resolver = GuardedResolver()
    with pytest.raises(AddressRefused) as caught:
        await resolver.resolve("localhost", 443, family)
    assert caught.value.reason == "resolved to loopback address"
    with pytest.raises(AddressRefused):
        await resolver.resolve("127.0.0.1", 443, family)  # numeric: still checked here
    await resolver.close()


async def test_guarded_resolver_refuses_any_internal_answer():
    public = await GuardedResolver(Answers("20.190.0.1", "2603:1026::1")).resolve("x", 443)
    assert [r["host"] for r in public] == ["20.190.0.1", "2603:1026::1"]
    for answers in (("20.190.0.1", "10.0.0.5"), ("::ffff:169.254.169.254",), ()):
        with pytest.raises(AddressRefused):
            await GuardedResolver(Answers(*answers)).resolve("x", 443)


async def test_a_guarded_session_never_connects_to_localhost():
    """Through aiohttp: the name resolves to loopback, so no connection is made."""
    connections = 0

    async def count(reader, writer):
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    resolver = GuardedResolver()
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        for _ in range(2):  # and again: nothing cached
            with pytest.raises(aiohttp.ClientConnectorError) as caught:
                await session.get(f"http://localhost:{port}/")
            assert isinstance(caught.value.os_error, AddressRefused)
    await resolver.close()
    server.close()
    await server.wait_closed()
    assert connections == 0
