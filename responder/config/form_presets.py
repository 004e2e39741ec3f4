"""The shipped form mappings (``form: {preset: ...}``), written as a council file would.

Each is the starting point for one forms package; a council overrides any path in its
own ``fields:`` and adds its ``types:`` (its form's category answers are its own).
Sample payloads for each are in tests/data/forms/; docs/intake-forms.md shows the
sender's set-up. They live with the council file's models because they are council-file
fragments, checked by the same code, not intake logic.
"""

from __future__ import annotations

from responder.config.forms import FormFields, FormMapping

PRESETS: dict[str, FormMapping] = {
    # Granicus govService: the form's integration (an HTTP POST of the submission as JSON),
    # modelled on its documented shape: the case reference beside a ``data`` object of
    # the form's answers by field name; the map field gives lat/lng, easting/northing,
    # the address and the UPRN. Field names are the form designer's: adjust the paths.
    "govservice": FormMapping(
        fields=FormFields(
            type="data.category",
            description="data.details",
            lat="data.location.lat",
            lon="data.location.lng",
            easting="data.location.easting",
            northing="data.location.northing",
            address="data.location.address",
            photos="data.photos[].url",
            external_id="caseRef",
            name="[data.firstName, data.lastName]",
            email="data.email",
            phone="data.phone",
            updates="data.keepMeUpdated",
        ),
        attributes={
            "case_reference": "caseRef",
            "form": "formName",
            "uprn": "data.location.uprn",
        },
    ),
    # Power Automate's "HTTP" action in a flow triggered by a new Dynamics 365 case
    # (incident): the body template in docs/intake-forms.md names each key; the flow fills
    # them from the case's own columns (the council's cr123_-style custom columns).
    "power-automate": FormMapping(
        fields=FormFields(
            type="category",
            description="description",
            lat="latitude",
            lon="longitude",
            address="address",
            photos="photos",
            external_id="ticketnumber",
            name="contact.fullname",
            email="contact.emailaddress1",
            phone="contact.mobilephone",
            updates="keepinformed",
        ),
        attributes={
            "dynamics_case": "ticketnumber",
            "dynamics_incidentid": "incidentid",
        },
    ),
    # WordPress Gravity Forms with its Webhooks add-on, Request Body "All Fields": the
    # whole entry, keyed by field id ('4', and '1.3' for a part of a Name or Address
    # field). These ids are those of the form in tests/data/forms/gravity-forms.json:
    # every form numbers its fields itself, so a council sets its own ids in fields:.
    "gravity-forms": FormMapping(
        fields=FormFields(
            type="4",
            description="5",
            lat="7",
            lon="8",
            address='["6.1", "6.2", "6.3", "6.5"]',
            photos="9",
            external_id="join('-', ['gf', to_string(form_id), to_string(id)])",
            name='["1.3", "1.6"]',
            email="2",
            phone="3",
            updates='["10.1", "10.2"]',
        ),
        attributes={"gravity_forms_entry": "to_string(id)", "form_page": "source_url"},
    ),
}
