"""British National Grid conversions (responder.domain.grid), against known points."""

import pytest

from responder.domain.grid import GridError, to_grid, to_lat_lon


def test_a_known_point_converts_both_ways_within_metres():
    # The Elizabeth Tower (Big Ben): TQ 30268 79640 is 51.50070 N, 0.12459 W
    # (about 3 m between them: the Helmert transformation's accuracy without OSTN15).
    lat, lon = to_lat_lon(530268, 179640)
    assert lat == pytest.approx(51.50070, abs=0.00005)
    assert lon == pytest.approx(-0.12459, abs=0.00006)
    assert to_grid(lat, lon) == (530268, 179640)


@pytest.mark.parametrize(
    ("easting", "northing"),
    [(float("nan"), 225100), (599700, float("inf")), (5_000_000, 225100), (599700, -90_000)],
)
def test_points_off_the_grid_are_refused(easting, northing):
    with pytest.raises(GridError):
        to_lat_lon(easting, northing)
