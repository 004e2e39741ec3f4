"""Where reports come from besides the JSON API: the council file's ``sources``.

Each source is named by its intake key (``RESPONDER_INTAKE_KEYS``, ``name:secret``): the
secret stays in the environment, the file says how the source talks.

```yaml
sources:
  fixmystreet:
    open311: {jurisdiction_id: sample-borough}     # FixMyStreet, at /open311/v2/
    photo_hosts: [fixmystreet.com]
  govservice:
    form: {preset: govservice}                     # POST /api/intake/govservice
    auth: hmac
    photo_hosts: [sample-borough.govservice.uk]
```
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from responder.config.base import Strict
from responder.config.forms import FormMapping, check_form
from responder.domain.hosts import host_suffix

# How a form source proves who it is: its key as a bearer token, or an HMAC-SHA256
# signature of the body with its key (and a timestamp, against replays).
SourceAuth = Literal["bearer", "hmac"]


class Open311Source(Strict):
    """A source speaking Open311 GeoReport v2 (FixMyStreet)."""

    # When set, requests must carry this jurisdiction_id (FixMyStreet sends its body's).
    jurisdiction_id: str | None = Field(default=None, min_length=1, max_length=200)


class Source(Strict):
    open311: Open311Source | None = None
    form: FormMapping | None = None
    auth: SourceAuth = "bearer"
    # Hosts whose photos (media_url, form photo links) may be fetched: a host matches
    # itself and its subdomains ("fixmystreet.com" or "*.fixmystreet.com").
    photo_hosts: list[str] = Field(default_factory=list)


def check_sources(sources: dict[str, Source] | None, task_types: list[str] | None) -> Iterator[str]:
    """Cross-reference problems of ``sources``, one line each (``config/load.py``)."""
    for name, source in (sources or {}).items():
        at = f"sources.{name}"
        if source.open311 is None and source.form is None:
            yield f"{at}: say how the source sends reports (open311: or form:)"
        if source.open311 is not None and source.form is not None:
            yield f"{at}: a source is open311 or a form, not both"
        if source.open311 is not None and source.auth != "bearer":
            yield f"{at}.auth: FixMyStreet signs in with its api_key; leave auth out"
        if source.form is not None:
            yield from check_form(f"{at}.form", source.form, task_types)
        for i, host in enumerate(source.photo_hosts):
            try:
                host_suffix(host)
            except ValueError:
                yield (
                    f"{at}.photo_hosts[{i}]: not a host name, e.g. fixmystreet.com or "
                    f"*.fixmystreet.com, got {host!r}"
                )
