"""The orchestrator's settings (``BDISC_`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from bdisc.service.settings import DatabaseSettings


class OrchestratorSettings(DatabaseSettings):
    embed_in_flight: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description=(
            "embed items one project may have in flight (sent, not answered); "
            "0: two per embedding replica, counted on the queue"
        ),
    )
