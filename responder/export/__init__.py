"""The council's data, out (issue 19): read-only ways to the tasks, on the same filter and
visibility rule as the web pages.

- ``api.py``: ``GET /api/tasks`` (JSON, keyset pages) and ``GET /api/tasks.csv`` (streamed);
- ``history.py``: ``GET /api/tasks/{id}/history`` (JSON) and ``.../history.csv``, for FOI
  and complaints;
- ``odata.py``: the OData v4 feed at ``/odata/`` for Power BI;
- ``keys.py``: read keys (``RESPONDER_READ_KEYS`` and the council file's ``read_keys``).

Everything here reads through ``responder.queries`` and never writes. See docs/data-out.md.
"""
