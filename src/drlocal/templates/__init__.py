"""Starting folders for `drlocal init --template NAME`: DeepRacer files a racer can start from.

Each template is a folder of files (package data) laid over DRfC's defaults: `custom_files/reward_function.py`,
`custom_files/model_metadata.json`, `custom_files/hyperparameters.json` (all three uploadable to DeepRacer-on-AWS
or the console unchanged), `run.env` settings (`run.env.add`: DR_* lines that replace DRfC's defaults) and a
`RACE-TEMPLATE.md` that explains every choice.
"""

from __future__ import annotations

from importlib import resources

NAMES = ("race", "race-continuous")
#: a template takes the files it does not have from its parent (race-continuous: race's reward and run.env)
PARENT = {"race-continuous": "race"}


def template_files(name: str) -> dict[str, str]:
    """Relative path -> text of the template's files (run.env.add included, applied by the caller)."""
    out: dict[str, str] = {}
    for rel in ("custom_files/reward_function.py", "custom_files/model_metadata.json",
                "custom_files/hyperparameters.json", "run.env.add", "RACE-TEMPLATE.md"):
        source: str | None = name
        while source is not None:
            path = resources.files(__package__) / source / rel.replace("custom_files/", "")
            if path.is_file():
                out[rel] = path.read_text(encoding="utf-8")
                break
            source = PARENT.get(source)
    return out
