"""A new task's priority: the type's own, then the council's rules in file order.

Priority names are whatever the council file lists (most urgent first); nothing
here knows "urgent" or "low". Every step leaves a reason so officers can see why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from responder.config.model import Council, RepeatReports, Rule, RuleWhen
from responder.domain.geo import haversine_m


@dataclass(frozen=True)
class NearbyReport:
    """An earlier report of the same type (a task, or a duplicate linked to one)."""

    lat: float
    lon: float
    reported_at: datetime
    # A task standing for several reports (its linked duplicates) counts them all.
    count: int = 1


@dataclass(frozen=True)
class PriorityDecision:
    priority: str
    reasons: tuple[str, ...]
    # Indexes into council.file.rules (0-based; reasons number rules from 1).
    fired: tuple[int, ...]


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    # Patterns come from the council file: few, fixed, and reused on every report.
    return re.compile(pattern)


def _num(value: float) -> str:
    return f"{value:g}"


def _repeat_count(
    repeat: RepeatReports,
    lat: float,
    lon: float,
    at: datetime,
    nearby: Sequence[NearbyReport],
) -> int:
    """Reports close enough in space and time, this one included."""
    window = timedelta(days=repeat.within_days)
    earlier = sum(
        r.count
        for r in nearby
        if timedelta(0) <= at - r.reported_at <= window
        and haversine_m(lat, lon, r.lat, r.lon) <= repeat.within_metres
    )
    return earlier + 1


def _matches(
    when: RuleWhen,
    type_code: str,
    description: str,
    raised_by: str,
    lat: float,
    lon: float,
    at: datetime,
    nearby: Sequence[NearbyReport],
) -> list[str] | None:
    """What matched, in words, if every condition holds; None otherwise."""
    matched: list[str] = []
    if when.raised_by is not None:
        if raised_by != when.raised_by:
            return None
        article = "an" if raised_by[:1] in "aeiou" else "a"
        matched.append(f"raised by {article} {raised_by}")
    if when.type is not None:
        if type_code != when.type:
            return None
        matched.append(f"type is {type_code}")
    if when.text_matches is not None:
        if _regex(when.text_matches).search(description) is None:
            return None
        matched.append(f"description matches '{when.text_matches}'")
    if when.repeat_reports is not None:
        repeat = when.repeat_reports
        count = _repeat_count(repeat, lat, lon, at, nearby)
        if count < repeat.at_least:
            return None
        matched.append(
            f"{count} reports within {_num(repeat.within_metres)} m"
            f" in {_num(repeat.within_days)} days"
        )
    return matched or ["always"]


def _apply(council: Council, rule: Rule, current: str) -> tuple[str, str]:
    """The priority after ``rule`` and the words for its effect."""
    if rule.priority is not None:
        return rule.priority, rule.priority
    if rule.at_least is not None:
        effect = f"at least {rule.at_least}"
        if council.priority_rank(rule.at_least) < council.priority_rank(current):
            return rule.at_least, effect
        return current, f"{effect} (already {current})"
    return current, "no change"  # a rule with no effect; the loader should refuse it


def prioritise(
    council: Council,
    type_code: str,
    description: str,
    raised_by: str,
    lat: float,
    lon: float,
    at: datetime,
    nearby: Sequence[NearbyReport] = (),
) -> PriorityDecision:
    """The priority of a new report, with the reasons and the rules that fired.

    A rule fires when all its conditions hold; ``priority:`` sets the level outright,
    ``at_least:`` only ever makes it more urgent. Later rules see earlier results.
    """
    task_type = council.task_type(type_code)
    if task_type is None:
        raise ValueError(f"unknown task type '{type_code}'")
    current = task_type.priority
    reasons = [f"{type_code} is '{current}' by default"]
    fired: list[int] = []
    for index, rule in enumerate(council.file.rules):
        matched = _matches(rule.when, type_code, description, raised_by, lat, lon, at, nearby)
        if matched is None:
            continue
        current, effect = _apply(council, rule, current)
        fired.append(index)
        reasons.append(f"rule {index + 1}: {' and '.join(matched)} -> {effect}")
    return PriorityDecision(current, tuple(reasons), tuple(fired))


def repeat_window(council: Council, type_code: str) -> tuple[float, float] | None:
    """(days, metres) wide enough for every repeat-reports rule that could apply.

    Lets the caller fetch candidate earlier reports once; rules restricted to another
    type are ignored, other conditions cannot be judged before the report exists.
    """
    windows = [
        (r.when.repeat_reports.within_days, r.when.repeat_reports.within_metres)
        for r in council.file.rules
        if r.when.repeat_reports is not None and r.when.type in (None, type_code)
    ]
    if not windows:
        return None
    return max(d for d, _ in windows), max(m for _, m in windows)
