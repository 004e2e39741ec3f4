"""Fakes of the services Responder talks to, shared by ``tests/`` and ``bench/``.

- ``fakes.connector``: the Bot Connector (Teams' side of a bot), recording what is sent;
- ``fakes.notify``: GOV.UK Notify's API, checking requests as Notify does;
- ``fakes.teams``: Teams activity JSON as Teams sends it to ``/api/messages``;
- ``fakes.durability``: the service as a process, reports and outbox reading for the
  crash and fault scenarios (``tests/test_durability.py``, ``bench.resilience``).

None of it imports pytest: ``python -m bench`` runs with ``pip install -e '.[bench]'``.
Like ``bench/``, this package is not installed; it is imported from the repository root
(``python -m bench`` from there; pytest's ``pythonpath`` in ``pyproject.toml``).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
