"""Spotting a new report that is the same problem as an open task nearby."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from responder.domain.geo import haversine_m


@dataclass(frozen=True)
class OpenTaskAt:
    task_id: int
    lat: float
    lon: float


def find_duplicate(
    lat: float, lon: float, candidates: Sequence[OpenTaskAt], within_metres: float
) -> OpenTaskAt | None:
    """The nearest candidate within ``within_metres`` (ties: lowest id); 0 disables.

    Candidates are expected to be open tasks of the same type, already prefiltered
    (e.g. with ``geo.bbox``); this makes the exact distance decision.
    """
    if within_metres <= 0:
        return None
    best: tuple[float, int, OpenTaskAt] | None = None
    for task in candidates:
        distance = haversine_m(lat, lon, task.lat, task.lon)
        if distance > within_metres:
            continue
        key = (distance, task.task_id, task)
        if best is None or key[:2] < best[:2]:
            best = key
    return best[2] if best else None
