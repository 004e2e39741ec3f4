"""Where a URL may be fetched from: the server-side request forgery (SSRF) guard.

Whoever hands Responder a URL to fetch (a Teams activity's attachment, an Open311
``media_url``, a form's photo link) chooses where the request goes. Fetched blindly, a URL
would let them make the service GET its own loopback ports, the cloud metadata service
(169.254.169.254) or the council's internal network, and keep what it found. So a URL is
fetched only when:

- it is https, with no credentials in it;
- its host is one the caller allows: a host matches a suffix when it is the suffix or one
  of its subdomains (``a.fixmystreet.com`` matches ``fixmystreet.com``;
  ``evilfixmystreet.com`` does not);
- every address it connects to is public: IP literals are checked here (aiohttp connects
  to them without asking a resolver), host names by ``GuardedResolver`` on the very
  addresses the connection then uses, so DNS cannot answer one thing to the check and
  another to the connection (rebinding).

Exempt (fetched without the guard): the exact origins in ``RESPONDER_DEV_ATTACHMENT_ORIGINS``
(development only: ``build_app`` refuses them in production), e.g. the tests' fake file
hosts on 127.0.0.1.

URLs are parsed with yarl, as aiohttp parses them, so the host checked is the host
connected to (yarl normalises Unicode hosts, e.g. a full-width "ｓharepoint.com").

Used by ``responder.bot.attachment_policy`` (officers' photos in Teams, with the Teams
hosts and the serviceUrl rule) and ``responder.fetching.photos`` (photos sources link to,
with each source's ``photo_hosts``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

# Host names' syntax is the domain's (the council file checks photo_hosts with it too).
from responder.domain.hosts import (
    host_name,
    host_suffix,
    suffix_match,
)

# IPv6 ranges that carry an IPv4 address on to it: the IPv4 address must be public too.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Origin = tuple[str, str, int]  # scheme, host (lower case, no trailing dot), port
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class URLRefused(ValueError):
    """A URL that must not be fetched; ``reason`` is safe to log (no URL, no personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AddressRefused(OSError):
    """Raised by GuardedResolver: the name resolved to an address we do not connect to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- addresses ---------------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to (mapped ::ffff:a.b.c.d, 6to4, NAT64)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _classify(ip: Address) -> str | None:
    # The specific reasons first, so logs say which; is_global last catches the rest
    # (100.64.0.0/10 shared address space, documentation and benchmarking ranges...).
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:  # is_global is True for some multicast ranges: check it ourselves
        return "multicast address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-public address"
    return None


def address_refusal(address: str | Address) -> str | None:
    """Why we must not connect to this IP address, or None when it is public."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:  # fe80::1%eth0: only link-local addresses have zones
            return "link-local address"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            # ::ffff:127.0.0.1 is loopback whatever Python's IPv6 tables say of it.
            return _classify(inner) or _classify(ip)
    return _classify(ip)


# -- hosts and origins -------------------------------------------------------------------


def origin_of(url: str | URL) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL without credentials, else None."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError):
        return None
    scheme = parsed.scheme.lower()
    host = parsed.raw_host
    if scheme not in ("http", "https") or not host or parsed.port is None:
        return None
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return None
    return scheme, host.lower().removesuffix("."), parsed.port


def dev_origin(value: str) -> str:
    """One entry of RESPONDER_DEV_ATTACHMENT_ORIGINS, as ``scheme://host:port``."""
    entry = value.strip()
    try:
        url = URL(entry)
    except ValueError:
        raise ValueError(f"expected scheme://host:port, not {value!r}") from None
    origin = origin_of(url)
    if origin is None or url.raw_path not in ("", "/") or url.raw_query_string or url.fragment:
        raise ValueError(f"expected scheme://host:port, not {value!r}")
    scheme, host, port = origin
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def parse_dev_origins(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(dev_origin(v) for v in value.split(",") if v.strip()))


def http_url(url: str | URL) -> tuple[URL, Origin]:
    """The URL as aiohttp will read it and its origin; URLRefused unless it is an absolute
    http(s) URL without credentials."""
    if not url:
        raise URLRefused("no URL")
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError):
        raise URLRefused("malformed URL") from None
    if parsed.scheme.lower() not in ("http", "https") or not parsed.raw_host:
        raise URLRefused("not an http(s) URL")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise URLRefused("credentials in URL")
    origin = origin_of(parsed)
    if origin is None:
        raise URLRefused("malformed URL")
    return parsed, origin


def public_host(host: str) -> tuple[str, Address | None]:
    """A host to connect to: a DNS name (its addresses are checked when it is resolved)
    or a public IP literal; URLRefused for anything else, with why."""
    if ":" in host or host.replace(".", "").isdigit():  # aiohttp will not resolve these
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            raise URLRefused("malformed IP address") from None
        reason = address_refusal(literal)
        if reason is not None:
            raise URLRefused(reason)
        return host, literal
    name = host_name(host)
    if name is None:
        raise URLRefused("not a valid host name")
    return name, None


# -- a policy by host suffixes -------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One request that may be made."""

    url: URL  # exactly what was checked: fetch this, not the original string
    guarded: bool  # through GuardedResolver (False only for the exempt dev origins)


@dataclass(frozen=True)
class HostPolicy:
    """https from hosts matching ``hosts`` (host suffixes), on public addresses only; the
    ``dev_origins`` exactly, unguarded. An IP literal is never one of the hosts."""

    hosts: tuple[str, ...] = ()
    dev_origins: tuple[str, ...] = ()
    _dev: frozenset[Origin | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(host_suffix(h) for h in self.hosts))
        object.__setattr__(self, "dev_origins", tuple(dev_origin(o) for o in self.dev_origins))
        object.__setattr__(self, "_dev", frozenset(origin_of(o) for o in self.dev_origins))

    def is_dev(self, origin: Origin) -> bool:
        return origin in self._dev

    def check(self, url: str | URL) -> Hop:
        """The request to make for ``url``, or URLRefused (with a loggable reason)."""
        parsed, origin = http_url(url)
        if self.is_dev(origin):
            return Hop(parsed, guarded=False)
        scheme, host, _ = origin
        if scheme != "https":
            raise URLRefused("not https")
        name, literal = public_host(host)
        if literal is not None or not suffix_match(name, self.hosts):
            raise URLRefused("host not allowed")
        return Hop(parsed, guarded=True)


# -- the resolver ----------------------------------------------------------------------------


class GuardedResolver(AbstractResolver):
    """The system resolver, refusing any name with a non-public address among its answers.

    Give it to a ``TCPConnector(use_dns_cache=False)``: aiohttp then asks it on every
    connection and connects only to the addresses it returned, the ones checked here.
    A name with any non-public answer is refused whole: a mix is a rebinding trick, not a
    file host.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or ThreadedResolver()  # getaddrinfo: /etc/hosts, as elsewhere

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not results:
            raise AddressRefused("resolved to no address")
        for result in results:
            reason = address_refusal(result["host"])
            if reason is not None:
                raise AddressRefused(f"resolved to {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()
