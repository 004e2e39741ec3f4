"""The council file: its model, loading and validation."""

from responder.config.load import ConfigError, load_council, validate_council_file
from responder.config.model import Council

__all__ = ["ConfigError", "Council", "load_council", "validate_council_file"]
