"""`drlocal upload | download | summary | custom-files`: DRfC's storage commands (registered on the main app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drlocal.cli_options import CfgOpt, DirOpt, ExpOpt
from drlocal.errors import DrlocalError


def register(app: typer.Typer, console: Console, err_console: Console, load: Any) -> None:
    """Add the storage commands to `app`; `load(directory, experiment, config)` returns the Job."""

    def say(m: str) -> None:
        err_console.print(m, highlight=False)

    @app.command()
    def upload(
        directory: DirOpt = Path("."),
        checkpoint: Annotated[str, typer.Option("--checkpoint", "-c", help="last (default), best or a number "
                                                "(DRfC: -b, -c N).")] = "last",
        best: Annotated[bool, typer.Option("--best", "-b", help="Upload the best checkpoint (DRfC -b).")] = False,
        prefix: Annotated[str | None, typer.Option("--prefix", "-p", help="Upload this local prefix, to the same "
                                                   "name (DRfC -p).")] = None,
        local: Annotated[bool, typer.Option("--local", "-L", help="Upload into the local bucket (DRfC -L).")] = False,
        wipe: Annotated[bool, typer.Option("--wipe", "-w", help="Delete other files under the target model/ "
                                           "(DRfC -w).")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded (DRfC -d).")] = False,
        increment: Annotated[bool, typer.Option("--increment", "-1", help="Bump DR_UPLOAD_S3_PREFIX first "
                                                "(dr-increment-upload-model).")] = False,
        car: Annotated[bool, typer.Option("--car", help="Upload the car's carfile.tar.gz instead "
                                          "(dr-upload-car-zip).")] = False,
        droa: Annotated[bool, typer.Option("--droa", help="Write the DeepRacer-on-AWS import folder and upload "
                                           "it as a model prefix.")] = False,
        custom_files: Annotated[bool, typer.Option("--custom-files", help="Upload custom_files/ to the bucket "
                                                   "(dr-upload-custom-files).")] = False,
        experiment: ExpOpt = None,
        config: CfgOpt = None,
    ) -> None:
        """Upload a model as DRfC's dr-upload-model does (best/last/N checkpoint, metadata, metrics)."""
        from drlocal.store import transfer

        job = load(directory, experiment, config, not custom_files)
        if custom_files:
            keys = transfer.upload_custom_files(job)
            console.print(f"uploaded {len(keys)} file(s) to {job.store.url(job.run.custom_files_prefix)}",
                          highlight=False)
            return
        if increment:
            from drlocal.config.workdir import increment_upload_prefix

            old, new = increment_upload_prefix(job)
            console.print(f"DR_UPLOAD_S3_PREFIX: {old} -> {new}", highlight=False)
        which = "best" if best else checkpoint
        if car:
            rep = transfer.upload_car(job, checkpoint=which, local=local, dry_run=dry_run)
        elif droa:
            rep = transfer.upload_droa(job, checkpoint=which, prefix=prefix, dry_run=dry_run)
        else:
            rep = transfer.upload_model(job, checkpoint=which, prefix=prefix, local=local, wipe=wipe,
                                        dry_run=dry_run, say=say)
        verb = "would upload" if rep.dry_run else "uploaded"
        console.print(f"{verb} checkpoint {rep.checkpoint} ({len(rep.keys)} files) to {rep.target}", highlight=False)
        if rep.dry_run:
            for k in rep.keys:
                console.print(f"  {k}", highlight=False)
        elif droa:
            console.print(f"import it into DeepRacer-on-AWS with DRfC: droa-import-model --model-prefix "
                          f"{rep.target.rstrip('/').rsplit('/', 1)[-1]}", highlight=False)

    @app.command()
    def download(
        source: Annotated[str, typer.Option("--source", "-s", help="s3://bucket/prefix of the model.")],
        target: Annotated[str, typer.Option("--target", "-t", help="Prefix in the local bucket.")],
        directory: DirOpt = Path("."),
        wipe: Annotated[bool, typer.Option("--wipe", "-w", help="Delete the target prefix first.")] = False,
        copy_config: Annotated[bool, typer.Option("--config", "-c", help="Also copy reward function, "
                                                  "model_metadata and hyperparameters into custom_files/.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be downloaded.")] = False,
        experiment: ExpOpt = None,
    ) -> None:
        """Copy a model from S3 into the local bucket, as DRfC's dr-download-model does."""
        from drlocal.store import transfer

        job = load(directory, experiment, None, False)
        rep = transfer.download_model(job, source, target, wipe=wipe, config=copy_config, dry_run=dry_run)
        verb = "would download" if rep.dry_run else "downloaded"
        console.print(f"{verb} {len(rep.keys)} object(s) from {source} to {rep.target}", highlight=False)

    @app.command("custom-files")
    def custom_files_cmd(
        direction: Annotated[str, typer.Argument(help="upload or download")],
        directory: DirOpt = Path("."),
        experiment: ExpOpt = None,
    ) -> None:
        """dr-upload-custom-files / dr-download-custom-files: custom_files/ <-> the bucket."""
        from drlocal.store import transfer

        if direction not in ("upload", "download"):
            raise DrlocalError(f"unknown direction {direction!r}.", hint="use upload or download.")
        job = load(directory, experiment, None, False)
        keys = (transfer.upload_custom_files if direction == "upload" else transfer.download_custom_files)(job)
        console.print(f"{direction}ed {len(keys)} file(s): {', '.join(keys) or 'none'}", highlight=False)

    @app.command()
    def summary(
        directory: DirOpt = Path("."),
        experiment: ExpOpt = None,
        config: CfgOpt = None,
    ) -> None:
        """The resolved configuration (each value with where it came from), the store and the model (dr-summary)."""
        job = load(directory, experiment, config, False)
        print_summary(job, console)


def _checkpoint_rows(store: Any) -> list[tuple[str, str]]:
    rows = []
    forms = getattr(store, "checkpoint_forms", None)
    for c in store.checkpoints():
        f = forms(c) if forms else ["drlocal"]
        rows.append((str(c), ", ".join(f)))
    return rows


def print_summary(job: Any, console: Console) -> None:
    """What `drlocal summary` prints."""
    from drlocal.store.local import ModelStore
    from drlocal.store.objects import StoreUnavailable

    run = job.run
    bucket = job.store
    t = Table(title=f"drlocal summary of {job.root}", show_header=False)
    t.add_column("what")
    t.add_column("value")
    files = getattr(job, "config_files", None) or []
    t.add_row("config files", ", ".join(str(p) for p in files) or "-")
    if getattr(run, "experiment_name", None):
        t.add_row("experiment", str(run.experiment_name))
    t.add_row("store", f"{bucket.kind}: {bucket.describe()}")
    reach = "local disk"
    if bucket.remote is not None:
        try:
            bucket.remote.check()  # type: ignore[attr-defined]
            reach = "[green]reachable[/]"
        except (StoreUnavailable, DrlocalError) as exc:
            reach = f"[red]not reachable[/] ({exc})"
    t.add_row("store status", reach)
    for n in bucket.notes:
        t.add_row("note", n)
    mirror = bucket.mirror() if bucket.remote is not None else None
    if mirror is not None and mirror.pending:
        t.add_row("waiting uploads", f"{mirror.pending} file(s) from an earlier run (uploading now)")
    t.add_row("model", bucket.url(run.model_prefix))
    try:
        root = bucket.pull(run.model_prefix, ["model/*"])
        ckpts = _checkpoint_rows(ModelStore(root))
        info = ModelStore(root).read_checkpoints_json()
    except (StoreUnavailable, DrlocalError) as exc:
        ckpts, info = [], {}
        t.add_row("checkpoints", f"unknown ({exc})")
    if ckpts:
        t.add_row("checkpoints", "; ".join(f"{n} ({f})" for n, f in ckpts))
        for key in ("best_checkpoint", "last_checkpoint"):
            if info.get(key):
                t.add_row(key.replace("_", " "), f"{info[key].get('name')} (metric {info[key].get('avg_eval_metric')})")
    elif not info:
        t.add_row("checkpoints", "none: `drlocal train` starts this model")
    if run.pretrained:
        t.add_row("pretrained", f"{run.pretrained_prefix} ({run.pretrained_checkpoint})")
    t.add_row("custom files", f"{job.reward_path}, {job.metadata_path}, {job.hyperparameters_path}")
    up = getattr(run, "upload_bucket", None)
    t.add_row("upload to", f"s3://{up}/{run.upload_prefix} (profile {getattr(run, 'upload_s3_profile', None)})"
              if up and up != "not-defined" else "DR_UPLOAD_S3_BUCKET not set")
    console.print(t)
    _print_settings(job, console)
    for w in job.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if mirror is not None:
        bucket.finish()


def _print_settings(job: Any, console: Console) -> None:
    """Every honoured DR_* setting with its value and origin (file:line, environment or default)."""
    from drlocal.config.run import VARIABLES

    origins = getattr(job, "origins", None) or {}
    v = Table(title="settings (DRfC name, value, where it came from)")
    for col in ("variable", "value", "from"):
        v.add_column(col)
    for var, fieldname in sorted(VARIABLES.items()):
        value = getattr(job.run, fieldname, None)
        v.add_row(var, "" if value is None else str(value), str(origins.get(var, "default")))
    console.print(v)
