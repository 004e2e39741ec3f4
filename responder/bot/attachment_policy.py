"""Where an officer's photo may be fetched from: Teams' own rules on top of the SSRF guard.

Whoever puts an activity in front of the bot chooses an attachment's ``contentUrl`` or
``downloadUrl``. The guard every fetch of ours goes through (``responder.fetching.guard``:
https, no credentials, public addresses only, checked on the addresses connected to) is
applied here with Teams' hosts, plus what is Teams' alone:

- the hosts that serve Teams attachments (``DEFAULT_ATTACHMENT_HOSTS``, replaced by
  ``RESPONDER_ATTACHMENT_HOSTS``) and the host of the activity's serviceUrl (an IP literal
  only as that host);
- the bot's Bearer token goes only to the exact origin (scheme, host, port) of the
  activity's serviceUrl, so it never leaks to a file host;
- the exact origin of the activity's serviceUrl is exempt when it is plain http (the Bot
  Framework Emulator, Agents Playground, the tests' fake Bot Connector, all on this
  machine), as are the origins in ``RESPONDER_DEV_ATTACHMENT_ORIGINS`` (development only:
  refused in production).
"""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from responder.domain.hosts import suffix_match
from responder.fetching import guard
from responder.fetching.guard import (
    AddressRefused,
    GuardedResolver,
    HostPolicy,
    URLRefused,
    http_url,
    origin_of,
    public_host,
)

# Host suffixes attachments are served from (a host matches itself and its subdomains).
DEFAULT_ATTACHMENT_HOSTS: tuple[str, ...] = (
    # The Bot Connector for Teams (serviceUrl https://smba.trafficmanager.net/uk/...):
    # pictures pasted in the compose box are at {serviceUrl}/v3/attachments/{id}/views/...
    "smba.trafficmanager.net",
    # Paperclip files' pre-authorised downloadUrl: OneDrive for Business and SharePoint...
    "sharepoint.com",
    # ...and the same in the US government clouds (GCC High, DoD).
    "sharepoint.us",
    # Teams' media store (AMS), where pasted pictures live (e.g. eu-api.asm.skype.com).
    "asm.skype.com",
    # Teams' own services, e.g. the GCC Bot Connector smba.infra.gcc.teams.microsoft.com
    # (GCC High and DoD use *.teams.microsoft.us: their serviceUrl host is allowed anyway).
    "teams.microsoft.com",
    # Images in messages as Graph "hosted contents" (.../hostedContents/{id}/$value).
    "graph.microsoft.com",
)

__all__ = [
    "DEFAULT_ATTACHMENT_HOSTS",
    "AddressRefused",
    "AttachmentPolicy",
    "GuardedResolver",
    "Hop",
    "URLRefused",
]


@dataclass(frozen=True)
class Hop(guard.Hop):
    """One request the bot may make for an attachment."""

    token: bool = False  # the bot's Bearer token goes with it (the serviceUrl origin only)


@dataclass(frozen=True)
class AttachmentPolicy(HostPolicy):
    hosts: tuple[str, ...] = DEFAULT_ATTACHMENT_HOSTS

    def check(self, url: str | URL, service_url: str = "") -> Hop:
        """The request to make for ``url``, or URLRefused (with a loggable reason)."""
        parsed, origin = http_url(url)
        service = origin_of(service_url)
        token = origin == service
        # The exemptions: a local Bot Connector over http, and a developer's own file host.
        if (token and origin[0] == "http") or self.is_dev(origin):
            return Hop(parsed, guarded=False, token=token)
        scheme, host, _ = origin
        if scheme != "https":
            raise URLRefused("not https")
        name, literal = public_host(host)
        service_host = service[1] if service is not None else None
        if literal is not None:
            allowed = host == service_host
        else:
            allowed = suffix_match(name, self.hosts) or name == service_host
        if not allowed:
            raise URLRefused("host not allowed")
        return Hop(parsed, guarded=True, token=token)
