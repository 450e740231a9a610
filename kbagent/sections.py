"""The base of every settings section. In the bottom layer, so each package can define its section next to the
code that reads it (`knowledge_base/config.py`, `agent/config.py`, ...) and `kbagent.settings` compose them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: built by field name or by its flat alias, never silently extended."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="forbid", frozen=True)
