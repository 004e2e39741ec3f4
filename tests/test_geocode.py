"""Where a report is: coordinates, or a ward with a description, on the example council."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from domain_helpers import EXAMPLES, build_council, example_council, other_council

from responder.domain import geocode
from responder.domain.geocode import GeocodeError, Geocoder, Place, WardGeocoder
from responder.domain.routing import WardLocator


@pytest.fixture(scope="module")
def locator() -> WardLocator:
    return WardLocator(example_council().wards)


@pytest.fixture(scope="module")
def geocoder(locator: WardLocator) -> WardGeocoder:
    return WardGeocoder(example_council(), locator)


# -- coordinates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lat", "lon", "ward"),
    [
        ("51.9051, 0.8873", 51.9051, 0.8873, "Northgate"),
        ("51.9051 0.8873", 51.9051, 0.8873, "Northgate"),
        ("51.9051,0.8873", 51.9051, 0.8873, "Northgate"),
        ("  51.9051 ,  0.8873  ", 51.9051, 0.8873, "Northgate"),
        ("(51.91, 0.91)", 51.91, 0.91, "Eastwood"),
        ("51.89 0.89", 51.89, 0.89, "Southmere"),
        ("+51.89, +0.91", 51.89, 0.91, "Riverside"),
    ],
)
def test_coordinates(geocoder: WardGeocoder, text: str, lat: float, lon: float, ward: str) -> None:
    assert geocoder.locate(text) == Place(lat, lon, None, ward)


def test_coordinates_outside_the_council(geocoder: WardGeocoder) -> None:
    with pytest.raises(GeocodeError) as info:
        geocoder.locate("50.8051, -1.0702")
    assert info.value.message.startswith("50.8051, -1.0702 is outside Sample Borough Council's")
    assert "latitude first" in info.value.message
    assert str(info.value) == info.value.message


def test_coordinates_the_wrong_way_round(geocoder: WardGeocoder) -> None:
    with pytest.raises(GeocodeError) as info:
        geocoder.locate("0.8873, 51.9051")
    assert "outside" in info.value.message
    assert "Did you mean 51.9051, 0.8873? Latitude comes first." in info.value.message


@pytest.mark.parametrize("text", ["95, 0.5", "-91 0", "51.9, 181", "51.9,-200"])
def test_coordinates_out_of_range(geocoder: WardGeocoder, text: str) -> None:
    with pytest.raises(GeocodeError) as info:
        geocoder.locate(text)
    message = info.value.message
    assert "isn't a position on the map" in message
    assert "latitude goes from -90 to 90 and longitude from -180 to 180" in message


# -- ward names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ward", "address"),
    [
        ("Northgate", "Northgate", "Northgate"),
        ("northgate", "Northgate", "Northgate"),
        ("  NORTHGATE  ", "Northgate", "Northgate"),
        ("northgte", "Northgate", "Northgate"),  # a small typo
        ("Northgate, by the park gates", "Northgate", "Northgate, by the park gates"),
        ("  Northgate, by the park gates ", "Northgate", "Northgate, by the park gates"),
        ("by the park gates in Northgate", "Northgate", "by the park gates in Northgate"),
        ("by the park gates, northgate", "Northgate", "by the park gates, northgate"),
        ("Northgate - by the park gates", "Northgate", "Northgate - by the park gates"),
        ("Northgate by the park gates", "Northgate", "Northgate by the park gates"),
        ("northgte, by the park gates", "Northgate", "northgte, by the park gates"),
        ("behind the shops in eastwod", "Eastwood", "behind the shops in eastwod"),
        # A street named like a ward: the ward named last wins.
        ("Eastwood Road, Southmere", "Southmere", "Eastwood Road, Southmere"),
        ("the Riverside car park", "Riverside", "the Riverside car park"),
    ],
)
def test_ward_with_a_description(
    geocoder: WardGeocoder, locator: WardLocator, text: str, ward: str, address: str
) -> None:
    place = geocoder.locate(text)
    assert (place.ward, place.address) == (ward, address)
    assert locator.locate(place.lat, place.lon) == ward


def test_each_ward_gives_one_fixed_point_inside_it(
    geocoder: WardGeocoder, locator: WardLocator
) -> None:
    for ward in example_council().wards:
        place = geocoder.locate(ward.name)
        assert locator.locate(place.lat, place.lon) == ward.name
        described = geocoder.locate(f"{ward.name}, by the shops")
        assert (described.lat, described.lon) == (place.lat, place.lon)


def test_multipolygon_and_hole_wards() -> None:
    council = other_council()
    locator = WardLocator(council.wards)
    geocoder = WardGeocoder(council)  # builds its own locator when given none
    for name in ("Isles", "Marsh", "Fen", "Lake"):
        place = geocoder.locate(f"the old mill, {name.lower()}")
        assert place.ward == name
        assert locator.locate(place.lat, place.lon) == name  # Fen's point is not in Lake


@pytest.mark.parametrize(
    "text", ["somewhere nice", "by the park gates", "Hill Parc", "10 Downing Street", "51.9"]
)
def test_anything_else_explains_both_forms(geocoder: WardGeocoder, text: str) -> None:
    with pytest.raises(GeocodeError) as info:
        geocoder.locate(text)
    message = info.value.message
    assert f"I couldn't find a ward of Sample Borough Council in '{text}'." in message
    assert "The wards are Northgate, Eastwood, Southmere and Riverside." in message
    assert '"Northgate, by the park gates"' in message
    assert "latitude, longitude" in message


def test_nothing_given(geocoder: WardGeocoder) -> None:
    for text in ("", "   "):
        with pytest.raises(GeocodeError) as info:
            geocoder.locate(text)
        assert info.value.message.startswith("Please say where it is: give the ward and the place")


def test_equally_close_wards_are_not_guessed() -> None:
    file_data = yaml.safe_load((EXAMPLES / "council.yaml").read_text())
    wards = json.loads((EXAMPLES / "wards.geojson").read_text())
    wards["features"][1]["properties"]["name"] = "Southgate"  # beside Northgate
    geocoder = WardGeocoder(build_council(file_data, wards))
    with pytest.raises(GeocodeError):
        geocoder.locate("Nouthgate, by the park")  # one edit from each
    assert geocoder.locate("Southgate, by the park").ward == "Southgate"


def test_a_gazetteer_plugs_in_through_the_protocol() -> None:
    class Gazetteer:
        def locate(self, text: str) -> Place:
            if text == "1 High Street":
                return Place(51.91, 0.89, "1 High Street", "Northgate")
            raise GeocodeError("I can't find that address.")

    geocoders: list[Geocoder] = [Gazetteer(), WardGeocoder(example_council())]
    assert [g.locate("1 High Street").address for g in geocoders[:1]] == ["1 High Street"]
    assert geocoders[1].locate("Northgate").ward == "Northgate"


def test_pure_module() -> None:
    tree = ast.parse(Path(geocode.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "re", "dataclasses", "typing", "rapidfuzz", "responder"}
