"""Turning where someone says a problem is into a point on the map.

``Geocoder`` is the seam: the bot only calls ``locate(text)``. ``WardGeocoder``, the
default, needs nothing but the council file: it understands coordinates, or a ward name
with an optional description of the spot. A council with a gazetteer (its LLPG, or
AddressBase) can later plug in street addresses and postcodes by implementing the
Protocol, perhaps falling back to ``WardGeocoder`` for what the gazetteer does not know.

Pure: no I/O here; a gazetteer-backed geocoder would load its data outside and pass it in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from rapidfuzz import process
from rapidfuzz.distance import OSA

from responder.config.model import Council
from responder.domain.routing import WardLocator


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float
    # What to show people as the address (None: only the point is known).
    address: str | None
    # The ward it is in, when the geocoder knows (routing locates the point anyway).
    ward: str | None


class GeocodeError(Exception):
    """A place that cannot be located; ``message`` is polite, specific and for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Geocoder(Protocol):
    def locate(self, text: str) -> Place:
        """The place ``text`` describes; raises GeocodeError saying what to give instead."""
        ...


# "50.8051, -1.0702", "50.8051 -1.0702", "50.8051,-1.0702", optionally in brackets.
_NUMBER = r"[+-]?\d+(?:\.\d+)?"
_COORDINATES = re.compile(rf"\(?\s*({_NUMBER})\s*(?:,\s*|\s+)({_NUMBER})\s*\)?", re.ASCII)
# Where a ward name may end a description: "..., Northgate", "... in Northgate".
_SEPARATORS = re.compile(r"\s*(?:[,;:()\u2013\u2014]|\s-\s)\s*")
_BEFORE_WARD = ("in", "near", "at", "by", "around")
_WORD = re.compile(r"[^\W_]+(?:[-'\u2019][^\W_]+)*")


def _key(text: str) -> str:
    """Lower case words only: "St. Mary's-on-Sea" -> "st marys on sea"."""
    text = re.sub(r"['\u2019]", "", text.lower())
    return " ".join(re.findall(r"[^\W_]+", text))


def _typos_allowed(length: int) -> int:
    # As in dialogs/intents.py: none in very short names, then about one edit in seven.
    if length <= 3:
        return 0
    if length <= 8:
        return 1
    return 2 if length <= 14 else 3


class WardGeocoder:
    """Coordinates (latitude first), or a ward name with an optional description.

    - "51.9051, 0.8873", "51.9051 0.8873", "51.9051,0.8873": that point, which must be in
      one of the council's wards; address None.
    - "Northgate", "Northgate, by the park gates", "by the park gates in Northgate": a
      point inside the ward (its representative point) with the text as the address (the
      ward's own name when that is all there was). Ward names forgive case and small typos.
    """

    def __init__(self, council: Council, locator: WardLocator | None = None) -> None:
        self.council_name = council.info.name
        self.locator = locator if locator is not None else WardLocator(council.wards)
        self._points: dict[str, tuple[float, float]] = {}
        for ward in council.wards:
            point = ward.geometry.representative_point()
            self._points[ward.name] = (point.y, point.x)  # lat, lon
        self._names = {_key(name): name for name in self._points if _key(name)}
        self._keys = list(self._names)
        self._longest = max((len(k.split()) for k in self._keys), default=0)

    # -- the Protocol -------------------------------------------------------------------------

    def locate(self, text: str) -> Place:
        given = " ".join((text or "").split())
        if not given:
            raise GeocodeError(f"Please say where it is: {self._how('give')}")
        numbers = _COORDINATES.fullmatch(given)
        if numbers is not None:
            return self._at(*numbers.groups())
        alone = self._ward(given)
        ward = alone or self._ward_in(given)
        if ward is None:
            shown = given if len(given) <= 60 else given[:57] + "..."
            raise GeocodeError(
                f"I couldn't find a ward of {self.council_name} in '{shown}'. "
                f"The wards are {self._ward_list()}. {self._how()}"
            )
        lat, lon = self._points[ward]
        address = ward if alone else text.strip()
        return Place(lat, lon, address, ward)

    # -- coordinates --------------------------------------------------------------------------

    def _at(self, lat_text: str, lon_text: str) -> Place:
        lat, lon = float(lat_text), float(lon_text)
        typed = f"{lat_text}, {lon_text}"
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            swapped = -90 <= lon <= 90 and -180 <= lat <= 180
            hint = " Latitude comes first, then longitude." if swapped else ""
            raise GeocodeError(
                f"{typed} isn't a position on the map: latitude goes from -90 to 90 and "
                f"longitude from -180 to 180.{hint} {self._how()}"
            )
        ward = self.locator.locate(lat, lon)
        if ward is None:
            if -90 <= lon <= 90 and self.locator.locate(lon, lat) is not None:
                hint = f"Did you mean {lon_text}, {lat_text}? Latitude comes first."
            else:
                hint = (
                    "Please check the coordinates (latitude first, then longitude), "
                    "or give the ward and the place instead."
                )
            raise GeocodeError(f"{typed} is outside {self.council_name}'s area. {hint}")
        return Place(lat, lon, None, ward)

    # -- ward names ---------------------------------------------------------------------------

    def _ward(self, text: str) -> str | None:
        """The ward these words name exactly, or within a small typo; None if unsure."""
        key = _key(text)
        if not key:
            return None
        name = self._names.get(key)
        if name is not None:
            return name
        allowed = _typos_allowed(len(key))
        if not allowed:
            return None
        found = process.extract(key, self._keys, scorer=OSA.distance, score_cutoff=allowed)
        if not found or (len(found) > 1 and found[1][1] == found[0][1]):
            return None  # nothing close, or two wards equally close
        return self._names[found[0][0]]

    def _ward_in(self, text: str) -> str | None:
        """The ward named in ``text``: as the last or first comma-separated part, after
        "in"/"near" at the end, as the first or last words, or anywhere word for word."""
        parts = [p for p in _SEPARATORS.split(text) if p]
        if len(parts) > 1:
            for part in (parts[-1], parts[0]):
                found = self._ward(part)
                if found is not None:
                    return found
        words = _WORD.findall(text)
        sizes = range(min(self._longest, len(words) - 1), 0, -1)
        for n in sizes:  # "... in Northgate"
            if len(words) > n and words[-n - 1].lower() in _BEFORE_WARD:
                found = self._ward(" ".join(words[-n:]))
                if found is not None:
                    return found
        for n in sizes:  # "Northgate by the park gates"
            found = self._ward(" ".join(words[:n]))
            if found is not None:
                return found
        for n in sizes:  # "... Northgate" at the end
            found = self._ward(" ".join(words[-n:]))
            if found is not None:
                return found
        padded = f" {_key(text)} "
        for key, name in self._names.items():  # anywhere, exactly: "the Northgate car park"
            if f" {key} " in padded:
                return name
        return None

    # -- words for people ---------------------------------------------------------------------

    def _ward_list(self) -> str:
        names = list(self._points) or ["(none)"]
        if len(names) > 12:
            return ", ".join(names[:12]) + " and others"
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]

    def _how(self, verb: str = "Please give") -> str:
        """The two accepted forms, with an example from this council."""
        if not self._points:
            return f"{verb} the coordinates as latitude, longitude."
        ward, (lat, lon) = next(iter(self._points.items()))
        return (
            f'{verb} the ward and the place, like "{ward}, by the park gates", or the '
            f'coordinates as latitude, longitude, like "{lat:.4f}, {lon:.4f}".'
        )
