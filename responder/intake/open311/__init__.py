"""Open311 GeoReport v2 at /open311/v2/, as FixMyStreet's client speaks it."""
