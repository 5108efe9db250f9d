"""Starting folders for `drlocal init --template NAME`: DeepRacer files a racer can start from.

Each template is a folder of files (package data) laid over DRfC's defaults: `custom_files/reward_function.py`,
`custom_files/model_metadata.json`, `custom_files/hyperparameters.json` (all three uploadable to DeepRacer-on-AWS
or the console unchanged), `run.env` settings (`run.env.add`: DR_* lines that replace DRfC's defaults) and a
`RACE-TEMPLATE.md` that explains every choice.
"""

from __future__ import annotations

from importlib import resources

NAMES = ("race", "race-continuous")


def template_files(name: str) -> dict[str, str]:
    """Relative path -> text of the template's files (run.env.add included, applied by the caller)."""
    root = resources.files(__package__) / name
    out: dict[str, str] = {}
    for rel in ("custom_files/reward_function.py", "custom_files/model_metadata.json",
                "custom_files/hyperparameters.json", "run.env.add", "RACE-TEMPLATE.md"):
        out[rel] = (root / rel.replace("custom_files/", "")).read_text(encoding="utf-8")
    return out
