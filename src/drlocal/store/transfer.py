"""DRfC's model transfers: `dr-upload-model`, `dr-upload-car-zip`, `dr-download-model`, custom files.

Each follows the DRfC script of the same name (`scripts/upload/*.sh`, `bin/scripts_wrapper.sh`):

* **upload** copies one checkpoint (last by default, `best`, or a number) of a model prefix with
  its model_metadata, reward function, hyperparameters, metrics and a training_params.yaml to
  `s3://DR_UPLOAD_S3_BUCKET/DR_UPLOAD_S3_PREFIX/` (profile DR_UPLOAD_S3_PROFILE), or to the local
  bucket (`local=True`, DRfC's `-L`). `deepracer_checkpoints.json` is rewritten so best = last = the
  chosen checkpoint, and the model's files go up before the pointer files, so the target is never
  seen half-written. A checkpoint that exists only as drlocal's `.ckpt.pt` gets its TensorFlow
  checkpoint and `model_<N>.pb` made on the way (the car extra provides TensorFlow).
* **upload_car** packs the car's `model.tar.gz` (frozen `model.pb` + `model_metadata.json`) of the
  last checkpoint and puts it at `<upload prefix>/carfile.tar.gz`.
* **download** copies `s3://bucket/prefix` (upload profile) into a local-bucket prefix after checking
  that it is a model (reward function, model_metadata, hyperparameters present).
* **upload_custom_files / download_custom_files** sync `custom_files/` (or the experiment's) with
  `s3://<bucket>/<DR_LOCAL_S3_CUSTOM_FILES_PREFIX>/`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drlocal.errors import DrlocalError
from drlocal.store.local import CheckpointName, ModelStore, atomic_write_bytes
from drlocal.store.objects import LocalBucket, ObjectMissing, ObjectStore, S3Bucket, S3Settings, join, parse_s3_url
from drlocal.store.select import StoreChoice, store_of

POINTERS = (".coach_checkpoint", "deepracer_checkpoints.json")


@dataclass
class TransferReport:
    """What a transfer did (or would do, for a dry run)."""

    target: str
    checkpoint: str = ""
    keys: list[str] = field(default_factory=list)
    dry_run: bool = False


def upload_target(job: Any, *, local: bool = False) -> ObjectStore:
    """The bucket uploads go to: DR_UPLOAD_S3_BUCKET with DR_UPLOAD_S3_PROFILE, or the local bucket (`-L`)."""
    if local:
        return store_of(job).objects()
    run = job.run
    bucket = getattr(run, "upload_bucket", None) or ""
    if not bucket or bucket in ("not-defined", "<AWS_DR_BUCKET>"):
        raise DrlocalError("no upload bucket: DR_UPLOAD_S3_BUCKET is not set in system.env.",
                           hint="set DR_UPLOAD_S3_BUCKET (and DR_UPLOAD_S3_PROFILE), or use --local for the local "
                           "bucket (DRfC's -L).")
    settings = S3Settings(bucket, None, getattr(run, "upload_s3_profile", None) or "default",
                          getattr(run, "aws_region", None) or None)
    return S3Bucket(settings)


def source_store(job: Any, *, profile: str | None = None) -> Callable[[str], ObjectStore]:
    """A factory of S3 buckets read with the upload profile (DRfC's download reads real S3 that way)."""
    run = job.run

    def make(bucket: str) -> ObjectStore:
        return S3Bucket(S3Settings(bucket, None, profile or getattr(run, "upload_s3_profile", None) or "default",
                                   getattr(run, "aws_region", None) or None))

    return make


def _choose(store: ModelStore, checkpoint: str) -> tuple[CheckpointName, dict[str, Any]]:
    """The checkpoint and the deepracer_checkpoints.json to upload (best = last = chosen, as DRfC writes it)."""
    info = store.read_checkpoints_json()
    if not info:
        raise DrlocalError(f"{store.model_dir}: no deepracer_checkpoints.json, so no checkpoint to upload.",
                           hint="train the model first, or pick another prefix.")
    name = store.resolve_checkpoint(checkpoint)
    entry = None
    for key in ("last_checkpoint", "best_checkpoint"):
        if (info.get(key) or {}).get("name") == str(name):
            entry = info[key]
    if entry is None:
        entry = {"name": str(name), "avg_eval_metric": 0.0, "time_stamp": 0.0}
    return name, {"last_checkpoint": entry, "best_checkpoint": entry}


def _drfc_files(store: ModelStore, name: CheckpointName, work: Path) -> list[Path]:
    """The TF checkpoint files and model_<N>.pb of `name`: the prefix's own, or made from drlocal's .ckpt.pt."""
    model = store.model_dir
    have = sorted(model.glob(f"{name}.*")) + sorted(model.glob(f"model_{name.number}.pb"))
    if any(p.name.endswith(".index") for p in have) and (model / f"model_{name.number}.pb").is_file():
        return have
    from drlocal.export.drfc import write_drfc_checkpoint

    payload = store.load_checkpoint(name.number)
    made = [Path(p) for p in write_drfc_checkpoint(work, name, payload)]
    return sorted({p.name: p for p in [*have, *made]}.values(), key=lambda p: p.name)


def upload_model(job: Any, *, checkpoint: str = "last", prefix: str | None = None, local: bool = False,
                 wipe: bool = False, dry_run: bool = False, say: Callable[[str], None] | None = None) -> TransferReport:
    """DRfC's `dr-upload-model [-b | -c N] [-p prefix] [-L] [-w] [-d]`."""
    say = say or (lambda m: None)
    run = job.run
    bucket = store_of(job)
    src_prefix = prefix or run.model_prefix
    target_prefix = prefix or getattr(run, "upload_prefix", "") or ""
    if not target_prefix:
        raise DrlocalError("no upload prefix: DR_UPLOAD_S3_PREFIX is not set in run.env.",
                           hint="set DR_UPLOAD_S3_PREFIX, or pass --prefix.")
    if local and target_prefix == src_prefix:
        raise DrlocalError(f"target equals source ({src_prefix}).", hint="set DR_UPLOAD_S3_PREFIX to another name.")
    target = upload_target(job, local=local)
    root = bucket.pull(src_prefix, ["model/*", "ip/*", "reward_function.py", "metrics/*", "metrics/*/*"])
    store = ModelStore(root)
    reward = root / "reward_function.py"
    if not reward.is_file():
        reward = bucket.local_root / run.reward_key
        if bucket.remote is not None and not reward.is_file():
            bucket.mirror().pull(str(Path(run.reward_key).parent), [Path(run.reward_key).name])  # type: ignore[union-attr]
    metrics_prefix = (f"{src_prefix}/metrics" if prefix else
                      getattr(run, "metrics_prefix", None) or f"{src_prefix}/metrics")
    metrics_dir = bucket.local_root / metrics_prefix
    if bucket.remote is not None and metrics_prefix != f"{src_prefix}/metrics":
        bucket.mirror().pull(metrics_prefix)  # type: ignore[union-attr]
    needed = {"reward function": reward, "model_metadata.json": store.model_dir / "model_metadata.json",
              "hyperparameters.json": root / "ip" / "hyperparameters.json"}
    missing = [f"{what} ({p})" for what, p in needed.items() if not p.is_file()]
    if not metrics_dir.is_dir() or not any(metrics_dir.rglob("*.json")):
        missing.append(f"metrics ({metrics_dir})")
    if missing:
        raise DrlocalError(f"{bucket.url(src_prefix)}: meta-data files not found: {', '.join(missing)}.",
                           hint="upload a trained model prefix (DRfC's dr-upload-model needs the same files).")
    name, pointers = _choose(store, checkpoint)
    report = TransferReport(f"{getattr(target, 'url', '?')}/{target_prefix}", str(name), dry_run=dry_run)
    with tempfile.TemporaryDirectory(prefix="drlocal-upload-") as tmp:
        work = Path(tmp)
        ckpt_files = _drfc_files(store, name, work)
        if store.checkpoint_path(name).is_file():
            ckpt_files.append(store.checkpoint_path(name))
        meta = store.model_dir / "model_metadata.json"
        atomic_write_bytes(work / "deepracer_checkpoints.json", (json.dumps(pointers) + "\n").encode())
        atomic_write_bytes(work / ".coach_checkpoint", f"{name}\n".encode())
        params = _training_params(job, target_prefix, getattr(target, "bucket", bucket.bucket))
        atomic_write_bytes(work / "training_params.yaml", params.encode())
        plan: list[tuple[str, Path]] = [(join(target_prefix, "model", p.name), p) for p in ckpt_files]
        plan.append((join(target_prefix, "model", "model_metadata.json"), meta))
        plan += [(join(target_prefix, "model", n), work / n) for n in ("deepracer_checkpoints.json",
                                                                        ".coach_checkpoint")]
        plan.append((join(target_prefix, "reward_function.py"), reward))
        plan += [(join(target_prefix, "metrics", p.relative_to(metrics_dir).as_posix()), p)
                 for p in sorted(metrics_dir.rglob("*")) if p.is_file() and not p.name.endswith(".tmp")]
        plan.append((join(target_prefix, "training_params.yaml"), work / "training_params.yaml"))
        plan.append((join(target_prefix, "ip", "hyperparameters.json"), root / "ip" / "hyperparameters.json"))
        plan.append((join(target_prefix, "model_metadata.json"), meta))
        report.keys = [k for k, _ in plan]
        if dry_run:
            return report
        if wipe:
            old = [o.key for o in target.list(join(target_prefix, "model") + "/")]
            extra = [k for k in old if k not in set(report.keys)]
            if extra:
                say(f"wiping {len(extra)} object(s) under {target_prefix}/model/ (-w)")
                target.delete(extra)
        for key, path in plan:
            target.put(key, path)
    return report


def _training_params(job: Any, prefix: str, bucket: str) -> str:
    """training_params.yaml for an uploaded model, as DRfC's scripts/upload/prepare-config.py writes it."""
    try:
        from drlocal.export.droa import droa_training_params, yaml_text
    except ImportError:  # older layout: plain quoted lines
        run = job.run
        values = {"WORLD_NAME": run.world_name, "RACE_TYPE": run.race_type, "CAR_NAME": run.car_name,
                  "SAGEMAKER_SHARED_S3_BUCKET": bucket, "SAGEMAKER_SHARED_S3_PREFIX": prefix}
        return "---\n" + "".join(f"{k}: '{v}'\n" for k, v in values.items())
    return yaml_text(droa_training_params(job, prefix=prefix, bucket=bucket))


def upload_car(job: Any, *, checkpoint: str = "last", local: bool = False, dry_run: bool = False) -> TransferReport:
    """DRfC's `dr-upload-car-zip [-L]`: the car archive of a checkpoint at `<upload prefix>/carfile.tar.gz`."""
    from drlocal.export import car

    run = job.run
    target_prefix = getattr(run, "upload_prefix", "") or ""
    if not target_prefix:
        raise DrlocalError("no upload prefix: DR_UPLOAD_S3_PREFIX is not set in run.env.",
                           hint="set DR_UPLOAD_S3_PREFIX in run.env.")
    target = upload_target(job, local=local)
    bucket = store_of(job)
    store = ModelStore(bucket.pull(run.model_prefix, ["model/*"]))
    model, metadata, name = car.load_trained(store, checkpoint)
    key = join(target_prefix, "carfile.tar.gz")
    report = TransferReport(f"{getattr(target, 'url', '?')}/{key}", name, [key], dry_run)
    if dry_run:
        return report
    with tempfile.TemporaryDirectory(prefix="drlocal-car-") as tmp:
        paths = car.export_car(car.spec_of(model, metadata), metadata, Path(tmp))
        target.put(key, paths["tar"])
    return report


def upload_droa(job: Any, *, checkpoint: str = "last", prefix: str | None = None,
                dry_run: bool = False) -> TransferReport:
    """The DeepRacer-on-AWS import folder (`export --format droa`) put into the local bucket as a model prefix,
    where DRfC's `droa-import-model --model-prefix <prefix>` pulls it from (model/, ip/hyperparameters.json,
    reward_function.py, training_params.yaml with TRACK_DIRECTION_CLOCKWISE, metrics/)."""
    from drlocal.export import car

    run = job.run
    bucket = store_of(job)
    target_prefix = prefix or getattr(run, "upload_prefix", "") or f"{run.model_prefix}-droa"
    if target_prefix == run.model_prefix:
        raise DrlocalError(f"target equals source ({target_prefix}).", hint="pass --prefix with another name.")
    root = bucket.pull(run.model_prefix, ["model/*", "ip/*", "reward_function.py", "training_params.yaml",
                                          "metrics/*"])
    store = ModelStore(root)
    model, metadata, name = car.load_trained(store, checkpoint)
    objects = bucket.objects()
    with tempfile.TemporaryDirectory(prefix="drlocal-droa-") as tmp:
        folder, _missing = car.export_droa(car.spec_of(model, metadata), metadata, store, name, Path(tmp),
                                           run_values=job)
        metrics = getattr(run, "metrics_prefix", None) or f"{run.model_prefix}/metrics"
        src_metrics = bucket.local_root / metrics / "TrainingMetrics.json"
        if src_metrics.is_file():
            atomic_write_bytes(folder / "metrics" / "TrainingMetrics.json", src_metrics.read_bytes())
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        plan = sorted(((join(target_prefix, p.relative_to(folder).as_posix()), p) for p in files),
                      key=lambda kp: kp[1].name in POINTERS)  # pointers last
        report = TransferReport(bucket.url(target_prefix), name, [k for k, _ in plan], dry_run)
        if not dry_run:
            for key, path in plan:
                objects.put(key, path)
    return report


def download_model(job: Any, source_url: str, target_prefix: str, *, wipe: bool = False, config: bool = False,
                   dry_run: bool = False, source: ObjectStore | None = None) -> TransferReport:
    """DRfC's `dr-download-model -s s3://bucket/prefix -t target [-w] [-c] [-d]`."""
    src_bucket, src_prefix = parse_s3_url(source_url)
    src = source if source is not None else source_store(job)(src_bucket)
    checks = {"reward_function.py": join(src_prefix, "reward_function.py"),
              "model_metadata.json": join(src_prefix, "model", "model_metadata.json"),
              "hyperparameters.json": join(src_prefix, "ip", "hyperparameters.json")}
    config_files: dict[str, bytes] = {}
    missing = []
    for name, key in checks.items():
        try:
            config_files[name] = src.get(key)
        except ObjectMissing:
            missing.append(key)
    if missing:
        raise DrlocalError(f"{source_url}: not a model (missing {', '.join(missing)}).",
                           hint="give the S3 URL of a model prefix: s3://bucket/prefix.")
    bucket = store_of(job)
    objects = src.list(src_prefix + "/")
    report = TransferReport(bucket.url(target_prefix), keys=[o.key for o in objects], dry_run=dry_run)
    if dry_run:
        return report
    dest = bucket.local_root / target_prefix
    if wipe:
        bucket.wipe(target_prefix)
    pointers = []
    files = []
    for o in objects:
        rel = o.key[len(src_prefix) + 1:]
        local = dest / rel
        src.download(o.key, local)
        (pointers if local.name in POINTERS else files).append(local)
    bucket.publish(files, pointers)
    if config:
        custom = getattr(job, "custom_files_dir", None) or job.root / "custom_files"
        for name, data in config_files.items():
            atomic_write_bytes(Path(custom) / name, data)
    bucket.finish()
    return report


def upload_custom_files(job: Any) -> list[str]:
    """DRfC's `dr-upload-custom-files`: the local custom_files/ (or the experiment's) to the bucket."""
    bucket = store_of(job)
    folder = Path(getattr(job, "custom_files_dir", None) or job.root / "custom_files")
    prefix = job.run.custom_files_prefix
    target = bucket.objects()
    keys = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            key = join(prefix, p.relative_to(folder).as_posix())
            target.put(key, p)
            keys.append(key)
    return keys


def download_custom_files(job: Any) -> list[str]:
    """DRfC's `dr-download-custom-files`: the bucket's custom files into custom_files/ (or the experiment's)."""
    bucket: StoreChoice = store_of(job)
    folder = Path(getattr(job, "custom_files_dir", None) or job.root / "custom_files")
    prefix = job.run.custom_files_prefix.strip("/") + "/"
    src = bucket.objects()
    keys = []
    for o in src.list(prefix):
        src.download(o.key, folder / o.key[len(prefix):])
        keys.append(o.key)
    return keys


__all__ = ["LocalBucket", "TransferReport", "download_custom_files", "download_model", "upload_car",
           "upload_custom_files", "upload_model"]
