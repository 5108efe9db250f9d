"""Gymnasium environments: `drlocal/DeepRacer-v0` (single car) and its native vector version."""

from __future__ import annotations

import gymnasium

ENV_ID = "drlocal/DeepRacer-v0"


def register_envs() -> None:
    """Register `drlocal/DeepRacer-v0` with an entry point and a native vector entry point (idempotent)."""
    if ENV_ID in gymnasium.registry:
        return
    gymnasium.register(
        id=ENV_ID,
        entry_point="drlocal.env.single:DeepRacerEnv",
        vector_entry_point="drlocal.env.vector_env:DeepRacerVectorEnv",
    )


register_envs()
