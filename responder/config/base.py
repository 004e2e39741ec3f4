"""What every model of the council file shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are refused (a typo is reported, not ignored); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
