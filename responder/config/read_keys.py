"""Read keys scoped in the council file: the ``read_keys`` section.

A read key lets a system read tasks (``GET /api/tasks``, the CSV export, the OData feed for
Power BI, a task's history); it can never write. Its secret is in the environment
(``RESPONDER_READ_KEYS``, ``name:secret`` pairs), never in the file. A key named in
``RESPONDER_READ_KEYS`` but not here reads the whole council (with internal notes, never
reporters' contact details); a key named here reads only what its entry allows. See
``docs/data-out.md``.

```yaml
read_keys:
  - name: northgate-councillors      # its secret: RESPONDER_READ_KEYS=northgate-councillors:...
    wards: [Northgate]               # tasks in these wards
  - name: street-care-bi
    teams: [sc-north, sc-south]      # tasks of these teams
    internals: true                  # internal notes and officers' names in histories
  - name: complaints
    everything: true                 # the whole council
    internals: true
    contacts: true                   # reporters' contact details in histories (FOI, complaints)
```
"""

from __future__ import annotations

from pydantic import Field, model_validator

from responder.config.base import Strict


class ReadKey(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    wards: list[str] = Field(default_factory=list, max_length=500)
    teams: list[str] = Field(default_factory=list, max_length=500)
    # The whole council (instead of wards and teams).
    everything: bool = False
    # Internal notes and the full history (as the team's own people see it) in histories.
    internals: bool = False
    # Reporters' names, emails and phone numbers in histories (until erased).
    contacts: bool = False

    @model_validator(mode="after")
    def _reaches_something(self) -> ReadKey:
        if self.everything and (self.wards or self.teams):
            raise ValueError("a read key is either everything: true or has wards/teams, not both")
        if not self.everything and not (self.wards or self.teams):
            raise ValueError("a read key needs wards, teams or everything: true")
        return self
