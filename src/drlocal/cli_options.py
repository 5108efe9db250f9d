"""Command-line options every `drlocal` command that reads a DRfC folder shares (one definition, one help text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DirOpt = Annotated[Path, typer.Option("--dir", "-d", help="Working folder (DRfC layout). Default: current folder.")]
ExpOpt = Annotated[str | None, typer.Option("--experiment", "-e", help="DRfC experiment: experiments/<name>/run.env "
                                            "(default DR_EXPERIMENT_NAME).")]
CfgOpt = Annotated[Path | None, typer.Option("--config", help="Run config file instead of run.env (DRfC's "
                                             "`source bin/activate.sh FILE`).")]
