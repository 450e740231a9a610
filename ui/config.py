"""The app's settings section: where it listens and whether it asks for a login."""

from __future__ import annotations

from pydantic import Field, SecretStr

from knowledge_base.config import Section


class AppConfig(Section):
    host: str = Field("127.0.0.1", description="Address the app listens on; beyond localhost, set auth.")
    port: int = Field(7860, ge=1, le=65535, description="Port the app listens on.")
    auth: SecretStr | None = Field(None, description="user:password turns the app's login on.")
