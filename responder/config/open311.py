"""What the Open311 server says of the council's services: the council file's ``open311``.

Services are the file's task types (their codes are the Open311 service codes, so they
stay stable as long as the file's do); this section adds what FixMyStreet shows beside
them, the council's extra questions, and how the council's outcomes read as Open311
statuses (mySociety's extended statuses).

```yaml
open311:
  services:
    fly-tipping:
      description: Rubbish dumped on a street, verge or alley
      group: [Street cleansing]
      keywords: [rubbish, dumping]
      attributes:
        - code: waste_type
          description: What has been dumped?
          datatype: singlevaluelist
          required: true
          values: {household: Household bags, furniture: Furniture, builders: Builders' waste}
  statuses:
    referred: NOT_COUNCILS_RESPONSIBILITY   # an outcome code -> an extended status
    cancelled: CLOSED                       # or a task status: accepted, in_progress, cancelled
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from responder.config.base import Strict
from responder.config.wording import hint

# mySociety's extended statuses (FixMyStreet's Open311 client, "extended statuses" on).
EXTENDED_STATUSES: tuple[str, ...] = (
    "OPEN",
    "INVESTIGATING",
    "IN_PROGRESS",
    "ACTION_SCHEDULED",
    "FIXED",
    "NO_FURTHER_ACTION",
    "NOT_COUNCILS_RESPONSIBILITY",
    "DUPLICATE",
    "INTERNAL_REFERRAL",
    "CLOSED",
    "CANCELLED",
    "REOPEN",
)
# Task statuses whose Open311 status the file may set besides outcomes.
MAPPABLE_TASK_STATUSES: tuple[str, ...] = ("accepted", "in_progress", "cancelled")

# The attributes FixMyStreet itself fills in (never shown to the resident); every
# service lists them, as ``automated: server_set``.
SERVER_SET_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("fixmystreet_id", "The report's id on FixMyStreet"),
    ("easting", "Easting (British National Grid)"),
    ("northing", "Northing (British National Grid)"),
    ("closest_address", "The nearest address to the report"),
    ("uprn", "Unique Property Reference Number"),
)

Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class Open311Attribute(Strict):
    """One extra question for a service (FixMyStreet asks the resident)."""

    code: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=500)
    datatype: Datatype = "string"
    required: bool = False
    # For the list datatypes: key -> the words shown, in order.
    values: dict[str, str] = Field(default_factory=dict)
    datatype_description: str | None = Field(default=None, max_length=500)


class Open311Service(Strict):
    """Extras for one task type's Open311 service."""

    description: str | None = None
    group: list[str] | None = None  # default: the type's service name
    keywords: list[str] = Field(default_factory=list)
    attributes: list[Open311Attribute] = Field(default_factory=list)


class Open311Config(Strict):
    services: dict[str, Open311Service] = Field(default_factory=dict)
    # Outcome code (or accepted / in_progress / cancelled) -> extended Open311 status.
    statuses: dict[str, str] = Field(default_factory=dict)


def check_open311(
    config: Open311Config | None, task_types: list[str] | None, outcomes: list[str] | None
) -> Iterator[str]:
    """Cross-reference problems of the ``open311`` section, one line each."""
    if config is None:
        return
    for code, service in config.services.items():
        at = f"open311.services.{code}"
        if task_types is not None and code not in task_types:
            yield f"{at}: unknown task type {code!r}{hint(code, task_types)}"
        yield from _check_attributes(at, service.attributes)
    keys = None if outcomes is None else [*outcomes, *MAPPABLE_TASK_STATUSES]
    for key, status in config.statuses.items():
        at = f"open311.statuses.{key}"
        if keys is not None and key not in keys:
            yield f"{at}: unknown outcome or task status {key!r}{hint(key, keys)}"
        if status not in EXTENDED_STATUSES:
            yield f"{at}: unknown Open311 status {status!r}{hint(status, EXTENDED_STATUSES)}"


def _check_attributes(at: str, attributes: list[Open311Attribute]) -> Iterator[str]:
    reserved = [name for name, _ in SERVER_SET_ATTRIBUTES]
    seen: dict[str, int] = {}
    for i, attribute in enumerate(attributes):
        where = f"{at}.attributes[{i}]"
        if not _CODE.fullmatch(attribute.code):
            yield (
                f"{where}.code: should be a letter then letters, digits or _ "
                f"(it is sent as attribute[code]), got {attribute.code!r}"
            )
        if attribute.code in reserved:
            yield f"{where}.code: {attribute.code!r} is filled in by FixMyStreet itself"
        if attribute.code in seen:
            first = seen[attribute.code]
            yield f"{where}.code: duplicate attribute code {attribute.code!r} (also [{first}])"
        seen.setdefault(attribute.code, i)
        is_list = attribute.datatype.endswith("valuelist")
        if is_list and not attribute.values:
            yield f"{where}.values: a {attribute.datatype} needs values (key: words shown)"
        if not is_list and attribute.values:
            yield f"{where}.values: only singlevaluelist and multivaluelist take values"
