"""Writing a trained model for the car, for ONNX runtimes and for DeepRacer-on-AWS, and checking it.

Car archive (`model.tar.gz`): `model.pb` and `model_metadata.json` at the archive root and
nothing else. The car's model loader (aws-deepracer-systems-pkg `model_loader_node`) extracts the
archive, takes the one file with a model extension (it refuses archives with several `.pb`
files), copies `model_metadata.json` from the archive root beside it, and passes both to the
model optimizer (stock: OpenVINO Model Optimizer; community stack: TFLite or OpenVINO). It reads
no checkpoint files, so none are packed (DRfC's `dr-upload-car-zip` packs SageMaker's whole
`/opt/ml/model`, whose checkpoints the car ignores).

DeepRacer-on-AWS import folder (`source/docs/import/README.md` of aws-solutions/deepracer-on-aws):
`model_metadata.json`, `reward_function.py`, `training_params.yaml`, `hyperparameters.json` at
the root (the website requires them there; the import API reads `ip/hyperparameters.json`, so it
is written there too), `model/.coach_checkpoint` plus the TF checkpoint files in `model/`, and
the training metrics as `metrics/training/training-*.json` (optional, for the console's graphs).
`training_params.yaml` is generated with every key the import and the simapp need
(`drlocal.export.droa`), from the run's DR_* values or, without them, from the prefix's own yaml.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from drlocal.errors import DrlocalError
from drlocal.export.spec import PolicySpec, input_name, output_name, spec_from_torch
from drlocal.store.local import ModelStore, atomic_write_bytes, atomic_write_json, atomic_write_text

TF_TOLERANCE = 1e-4  # max abs difference TF vs torch and ONNX vs torch
CONVERTER_TOLERANCE = 1e-3  # continuous actions through OpenVINO / TFLite (FP32)


def load_trained(store: ModelStore, which: str | int = "best") -> tuple[nn.Module, dict[str, Any], str]:
    """(policy network, model_metadata dict, checkpoint name) of a drlocal model prefix."""
    from drlocal.learn.evaluate import load_policy

    model, md, name = load_policy(store, which, torch.device("cpu"))
    return model.eval(), md.to_json_dict(), name


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz with the files at its root (regular files, mode 0644)."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def metadata_bytes(metadata: dict[str, Any]) -> bytes:
    return (json.dumps(metadata, indent=4) + "\n").encode()


def export_car(spec: PolicySpec, metadata: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write `model.pb`, `model_metadata.json` and `model.tar.gz` (both files at its root) into out_dir."""
    from drlocal.export.tfgraph import frozen_graph

    pb = frozen_graph(spec)
    meta = metadata_bytes(metadata)
    paths = {"pb": out_dir / "model.pb", "metadata": out_dir / "model_metadata.json", "tar": out_dir / "model.tar.gz"}
    atomic_write_bytes(paths["pb"], pb)
    atomic_write_bytes(paths["metadata"], meta)
    atomic_write_bytes(paths["tar"], tar_gz({"model.pb": pb, "model_metadata.json": meta}))
    return paths


def export_onnx(spec: PolicySpec, out_dir: Path) -> Path:
    from drlocal.export.onnx_graph import onnx_model

    path = out_dir / "model.onnx"
    atomic_write_bytes(path, onnx_model(spec))
    return path


def _droa_params(store: ModelStore, run_values: Any) -> tuple[dict[str, Any], bool]:
    """(training_params.yaml keys, whether they rest on real run settings) for the DRoA folder."""
    from drlocal.export.droa import (
        dr_values,
        droa_training_params,
        parse_training_params,
        run_values_from_training_params,
    )

    own = store.root / "training_params.yaml"
    known = run_values is not None or own.is_file()
    values: dict[str, Any] = {}
    if own.is_file():
        values = run_values_from_training_params(parse_training_params(own.read_text(encoding="utf-8")))
    if run_values is not None:
        values.update(dr_values(run_values))
    if store.root.parent.name:
        values.setdefault("DR_LOCAL_S3_BUCKET", store.root.parent.name)
    return droa_training_params(values, prefix=store.root.name), known


def export_droa(spec: PolicySpec, metadata: dict[str, Any], store: ModelStore, checkpoint: str,
                out_dir: Path, *, run_values: Any = None) -> tuple[Path, list[str]]:
    """The folder DeepRacer-on-AWS imports; returns (folder, names of side files the prefix lacked).

    `run_values`: the run's settings for training_params.yaml (a Job, a RunConfig or DR_* values, see
    `droa.droa_training_params`), over the prefix's own training_params.yaml; with neither, DRfC's
    defaults are used and "training_params.yaml" is reported as missing. The S3 keys point into the
    exported prefix (`store.root.name`)."""
    from drlocal.export.droa import training_params_yaml
    from drlocal.export.tfgraph import frozen_graph, write_coach_checkpoint

    folder = out_dir / "droa"
    model_dir = folder / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for old in model_dir.glob("*.ckpt.*"):
        old.unlink()
    for old in model_dir.glob("model_*.pb"):
        old.unlink()
    write_coach_checkpoint(spec, model_dir, checkpoint)
    atomic_write_text(model_dir / ".coach_checkpoint", f"{checkpoint}\n")
    atomic_write_text(model_dir / "checkpoint",  # TF's own checkpoint state file, as SageMaker leaves it
                      f'model_checkpoint_path: "{checkpoint}"\nall_model_checkpoint_paths: "{checkpoint}"\n')
    number = checkpoint.split("_")[0]
    atomic_write_bytes(model_dir / f"model_{number}.pb", frozen_graph(spec))
    entry = {"name": checkpoint, "avg_eval_metric": 0.0, "time_stamp": 0.0}
    info = store.read_checkpoints_json()
    for key in ("best_checkpoint", "last_checkpoint"):
        if (info.get(key) or {}).get("name") == checkpoint:
            entry = info[key]
    atomic_write_json(model_dir / "deepracer_checkpoints.json", {"best_checkpoint": entry, "last_checkpoint": entry})
    meta = metadata_bytes(metadata)
    atomic_write_bytes(folder / "model_metadata.json", meta)
    atomic_write_bytes(model_dir / "model_metadata.json", meta)
    params, known = _droa_params(store, run_values)
    atomic_write_text(folder / "training_params.yaml", training_params_yaml(params))
    missing = [] if known else ["training_params.yaml"]
    for src, dsts in (("reward_function.py", ("reward_function.py",)),
                      ("ip/hyperparameters.json", ("hyperparameters.json", "ip/hyperparameters.json"))):
        p = store.root / src
        if p.is_file():
            for dst in dsts:
                atomic_write_bytes(folder / dst, p.read_bytes())
        else:
            missing.append(dsts[0])
    metrics = store.metrics_dir / "TrainingMetrics.json"
    if metrics.is_file():
        atomic_write_bytes(folder / "metrics" / "training" / "training-metrics.json", metrics.read_bytes())
    return folder, missing


# ----- checks -----

def check_observations(metadata: dict[str, Any], track: str = "reinvent_base", n: int = 8) -> dict[str, np.ndarray]:
    """Rendered sensor observations (as the env produces them) at n poses spread around the lap."""
    from drlocal.config.model_metadata import load_model_metadata
    from drlocal.env.observations import ObservationBuilder
    from drlocal.tracks import load_track

    md = load_model_metadata(dict(metadata))
    t = load_track(track)
    xy, yaw = t.forward.pose_at(np.linspace(0.0, t.length, n, endpoint=False) + 0.3)
    offset = np.linspace(-0.15, 0.15, n)  # off the centre line and turned, so frames differ in more than position
    x = xy[:, 0] - np.sin(yaw) * offset
    y = xy[:, 1] + np.cos(yaw) * offset
    obs = ObservationBuilder(md, t).observe(x, y, yaw + np.linspace(-0.3, 0.3, n), rng=np.random.default_rng(0))
    return obs if isinstance(obs, dict) else {md.sensor[0]: obs}


@dataclass
class CheckResult:
    """One runtime's agreement with the PyTorch policy on the check frames."""

    runtime: str
    max_abs_diff: float
    same_actions: int
    frames: int
    ok: bool
    detail: str = ""

    def line(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (f"{self.runtime:<28} max |Δ| {self.max_abs_diff:.2e}  same action {self.same_actions}/{self.frames}"
                f"  {verdict}{'  ' + self.detail if self.detail else ''}")


def _reference(model: nn.Module, obs: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model.policy_output({k: torch.as_tensor(v) for k, v in obs.items()}).float().numpy()


def actions_of(spec: PolicySpec, out: np.ndarray) -> np.ndarray:
    """Greedy env actions from the graph output: argmax, clipped PPO mean, or tanh of SAC's mean."""
    if spec.algorithm == "sac":
        return np.tanh(out)
    return np.clip(out, -1.0, 1.0) if spec.continuous else out.argmax(axis=1)


def _result(spec: PolicySpec, runtime: str, ref: np.ndarray, out: np.ndarray, tol: float | None,
            detail: str = "") -> CheckResult:
    out = np.asarray(out, np.float32).reshape(ref.shape)
    diff = float(np.abs(out - ref).max())
    a_ref, a_out = actions_of(spec, ref), actions_of(spec, out)
    if spec.continuous:
        same = int((np.abs(a_ref - a_out).max(axis=1) <= CONVERTER_TOLERANCE).sum())
    else:
        same = int((a_ref == a_out).sum())
    ok = same == len(ref) and (tol is None or diff <= tol)
    return CheckResult(runtime, diff, same, len(ref), ok, detail)


def _feeds(spec: PolicySpec, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {input_name(s, spec.algorithm): np.asarray(obs[s], np.float32) for s in spec.sensor_names}


def check_tensorflow(spec: PolicySpec, model: nn.Module, pb: bytes, obs: dict[str, np.ndarray]) -> CheckResult:
    from drlocal.export.tfgraph import run_frozen_graph

    out = run_frozen_graph(pb, _feeds(spec, obs), output_name(spec.algorithm))
    return _result(spec, "TensorFlow (model.pb)", _reference(model, obs), out, TF_TOLERANCE)


def check_openvino(spec: PolicySpec, model: nn.Module, pb_path: Path, obs: dict[str, np.ndarray]) -> CheckResult:
    """`openvino.convert_model(model.pb)` as the stock car's model optimizer step, run on CPU in FP32."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise DrlocalError("openvino is not installed.", hint="pip install 'drlocal[car]'.") from exc
    converted = ov.convert_model(str(pb_path))
    compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    feeds = _feeds(spec, obs)
    by_port = {}
    for port in compiled.inputs:
        names = {n.split(":")[0] for n in port.get_names()}
        match = [k for k in feeds if k in names]
        if not match:
            raise DrlocalError(f"OpenVINO: input {sorted(names)} is not one of the graph inputs {sorted(feeds)}.")
        by_port[port] = feeds[match[0]]
    out = compiled(by_port)[compiled.outputs[0]]
    return _result(spec, f"OpenVINO {ov.__version__.split('-')[0]} (CPU f32)", _reference(model, obs), out, None)


def check_tflite(spec: PolicySpec, model: nn.Module, pb_path: Path, obs: dict[str, np.ndarray]) -> CheckResult:
    """TFLiteConverter.from_frozen_graph, as the community car stack converts `model.pb`, run in FP32."""
    from drlocal.export.tfgraph import import_tf, quiet_native_stderr

    tf = import_tf()
    feeds = _feeds(spec, obs)
    n = len(next(iter(feeds.values())))
    shapes = {k: [1, *v.shape[1:]] for k, v in feeds.items()}
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(pb_path), input_arrays=list(feeds), output_arrays=[output_name(spec.algorithm)], input_shapes=shapes)
    import warnings

    with quiet_native_stderr(), warnings.catch_warnings():
        flat = converter.convert()
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's move-to-LiteRT notice
        interp = tf.lite.Interpreter(model_content=flat)
    details = interp.get_input_details()
    for d in details:
        interp.resize_tensor_input(d["index"], [n, *shapes[_match_name(d["name"], feeds)][1:]])
    with quiet_native_stderr():
        interp.allocate_tensors()  # XNNPACK announces itself here
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], feeds[_match_name(d["name"], feeds)])
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    return _result(spec, f"TFLite (TF {tf.__version__}, FP32)", _reference(model, obs), out, None,
                   f"{len(flat) / 1e6:.1f} MB flatbuffer")


def _match_name(name: str, feeds: dict[str, np.ndarray]) -> str:
    base = name.split(":")[0]
    for k in feeds:
        if base == k or base.endswith(k) or k.endswith(base):
            return k
    raise DrlocalError(f"TFLite: input {name} is not one of the graph inputs {sorted(feeds)}.")


def check_onnx(spec: PolicySpec, model: nn.Module, data: bytes, obs: dict[str, np.ndarray]) -> CheckResult:
    import onnxruntime as ort

    from drlocal.export.onnx_graph import run_onnx

    out = run_onnx(data, _feeds(spec, obs))
    return _result(spec, f"onnxruntime {ort.__version__}", _reference(model, obs), out, TF_TOLERANCE)


def check_car(spec: PolicySpec, model: nn.Module, pb: bytes, obs: dict[str, np.ndarray]) -> list[CheckResult]:
    """TensorFlow, OpenVINO and TFLite runs of the frozen graph against the PyTorch policy."""
    with tempfile.TemporaryDirectory() as tmp:
        pb_path = Path(tmp) / "model.pb"
        pb_path.write_bytes(pb)
        return [check_tensorflow(spec, model, pb, obs), check_openvino(spec, model, pb_path, obs),
                check_tflite(spec, model, pb_path, obs)]


def spec_of(model: nn.Module, metadata: dict[str, Any]) -> PolicySpec:
    return spec_from_torch(model, metadata.get("neural_network", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"))
