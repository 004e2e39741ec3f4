"""Responder: street-care tasks from residents' reports to council officers in Teams."""

# Kept equal to [project] version in pyproject.toml (tests/test_cli.py checks).
__version__ = "0.1.0"
