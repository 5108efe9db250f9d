"""`drlocal import`: read a DeepRacer model (frozen graph or TF checkpoint) into drlocal's networks.

Sources: a car `model.tar.gz` (console "physical model", DRfC `carfile.tar.gz`, `drlocal export`),
a bare `model.pb`, or a model folder (DRfC prefix, console/DeepRacer-on-AWS "virtual model",
`drlocal export --format droa`) holding `model.pb`, `agent/model.pb`, `model/model_<N>.pb` or an
RL-Coach TF checkpoint `model/<N>_Step-<M>.ckpt.*` (the checkpoint needs the `car` extra; frozen
graphs are parsed without TensorFlow).

The architecture is recognised from the weights alone: the input placeholders name the sensors
(contract §7.3), the kernel shapes of each sensor's embedder select the `neural_network`
scheme, the middleware sizes confirm it, and the head gives the action count and whether the
policy is discrete, continuous PPO or SAC. Anything else is refused with the expected shapes.
A frozen policy graph has no value network: PPO's value tower starts freshly initialised (SAC:
fresh Q and V networks), which matters only when training on top of the imported model.

A model folder with checkpoints in `model/` (DRfC / SageMaker prefix, DeepRacer-on-AWS folder,
drlocal prefix) is imported as one chosen checkpoint (`checkpoint`: best | last | N, resolved as
DeepRacer does) under its own name and number, together with the prefix's history (metrics,
simtraces, evaluations, side files), so that the new prefix reads like the old one.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drlocal.errors import DrlocalError
from drlocal.export.graphdef import Node, parse_graphdef
from drlocal.export.spec import (
    KNOWN_SENSORS,
    NETWORKS,
    PPO_OUTPUT,
    SAC_OUTPUT,
    Layer,
    PolicySpec,
    TowerSpec,
    camera_kernel_shapes,
    expected_architecture,
    policy_scope,
)
from drlocal.learn.networks import LIDAR_DENSE, LIDARS, MIDDLEWARE

_INPUT = re.compile(r"^main_level/agent/(main|policy)/online/network_0/([^/]+)/([^/]+)$")
_PB_NAME = re.compile(r"^model_(\d+)\.pb$")
FIX = "pass a DeepRacer model.tar.gz, model.pb or model folder (DRfC, console, DeepRacer-on-AWS or drlocal export)."


@dataclass
class ModelSource:
    """What a model file or folder holds, before the architecture is recognised."""

    origin: str
    weights: dict[str, np.ndarray]
    inputs: dict[str, list[int]] | None  # placeholder name -> shape (frozen graphs only)
    output_ops: dict[str, str]  # output name -> op type, for the two known outputs present
    metadata: dict[str, Any] | None
    pb: bytes | None = None
    side_files: dict[str, bytes] | None = None  # reward_function.py, hyperparameters.json, training_params.yaml


# ----- reading sources -----

def _resolve(nodes: dict[str, Node], name: str) -> Node | None:
    """Follow Identity ("…/read") edges to the node that holds a value."""
    seen = 0
    node = nodes.get(name.split(":")[0].lstrip("^"))
    while node is not None and node.op == "Identity" and node.inputs and seen < 8:
        node = nodes.get(node.inputs[0].split(":")[0].lstrip("^"))
        seen += 1
    return node


def source_from_pb(pb: bytes, origin: str, metadata: dict[str, Any] | None = None) -> ModelSource:
    nodes = parse_graphdef(pb, origin)
    by_name = {n.name: n for n in nodes}
    weights = {n.name: n.value for n in nodes if n.op == "Const" and n.value is not None and n.value.ndim >= 1
               and n.value.dtype.kind == "f"}
    inputs = {n.name: list(n.shape or []) for n in nodes if n.op in ("Placeholder", "PlaceholderWithDefault")}
    outputs = {}
    for out in (PPO_OUTPUT, SAC_OUTPUT):
        node = by_name.get(out)
        if node is not None:
            src = _resolve(by_name, node.inputs[0]) if node.op == "Identity" and node.inputs else node
            outputs[out] = src.op if src is not None else node.op
    return ModelSource(origin, {k: v.astype(np.float32) for k, v in weights.items()}, inputs, outputs, metadata, pb)


def _read_tar(path: Path) -> tuple[bytes, dict[str, Any] | None]:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            pbs = [m for m in members if m.name.endswith(".pb")]
            metas = sorted((m for m in members if Path(m.name).name == "model_metadata.json"),
                           key=lambda m: m.name.count("/"))
            if not pbs:
                raise DrlocalError(f"{path}: no .pb frozen graph inside (found: "
                                   f"{', '.join(m.name for m in members) or 'nothing'}).", hint=FIX)
            if len(pbs) > 1:  # the car refuses archives with several models as well
                names = {Path(m.name).name: m for m in pbs}
                pick = names.get("model.pb")
                if pick is None:
                    raise DrlocalError(f"{path}: several frozen graphs inside ({', '.join(m.name for m in pbs)}).",
                                       hint="keep one model.pb in the archive.")
                pbs = [pick]
            pb = tar.extractfile(pbs[0]).read()  # type: ignore[union-attr]
            meta = json.loads(tar.extractfile(metas[0]).read()) if metas else None  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DrlocalError(f"{path}: cannot read the archive ({exc}).", hint=FIX) from exc
    return pb, meta


def _read_json(p: Path) -> dict[str, Any] | None:
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DrlocalError(f"{p}: invalid JSON ({exc}).") from exc


def _checkpoint_choice(model_dir: Path) -> str | None:
    """The checkpoint a DeepRacer folder points at: `.coach_checkpoint`, else deepracer_checkpoints' last."""
    coach = model_dir / ".coach_checkpoint"
    if coach.is_file():
        text = coach.read_text(encoding="utf-8").strip()
        m = re.search(r"(\d+_Step-\d+\.ckpt)", text)
        if m:
            return m.group(1)
    info = _read_json(model_dir / "deepracer_checkpoints.json") or {}
    return (info.get("last_checkpoint") or {}).get("name")


def _side_files(root: Path) -> dict[str, bytes]:
    out = {}
    for rel in ("reward_function.py", "training_params.yaml", "hyperparameters.json", "ip/hyperparameters.json"):
        p = root / rel
        if p.is_file():
            out.setdefault(Path(rel).name, p.read_bytes())
    return out


def _folder_source(root: Path, metadata: dict[str, Any] | None) -> ModelSource:
    model_dir = root / "model" if (root / "model").is_dir() else root
    meta = metadata or _read_json(root / "model_metadata.json") or _read_json(model_dir / "model_metadata.json")
    side = _side_files(root)
    for rel in ("model.pb", "agent/model.pb", "model/model.pb", "model/agent/model.pb"):
        if (root / rel).is_file():
            src = source_from_pb((root / rel).read_bytes(), str(root / rel), meta)
            src.side_files = side
            return src
    chosen = _checkpoint_choice(model_dir)
    numbered = {int(m.group(1)): p for p in model_dir.glob("model_*.pb") if (m := _PB_NAME.match(p.name))}
    indexes = sorted(model_dir.glob("*.ckpt.index"))
    prefix = None
    if chosen and (model_dir / f"{chosen}.index").is_file():
        prefix = model_dir / chosen
    elif indexes:
        last = max(indexes, key=lambda p: int(p.name.split("_")[0]) if p.name[0].isdigit() else -1)
        prefix = last.with_name(last.name.removesuffix(".index"))
    if prefix is not None and (not numbered or _has_tensorflow()):
        # the checkpoint also holds PPO's value network, so training on top starts from it too
        src = source_from_checkpoint(prefix, meta)
        src.side_files = side
        return src
    if numbered:
        n = int(chosen.split("_")[0]) if chosen and int(chosen.split("_")[0]) in numbered else max(numbered)
        src = source_from_pb(numbered[n].read_bytes(), str(numbered[n]), meta)
        src.side_files = side
        return src
    raise DrlocalError(f"{root}: no model.pb, model/model_<N>.pb or TensorFlow checkpoint (*.ckpt.index) found.",
                       hint=FIX)


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def has_tensorflow() -> bool:
    """Whether TensorFlow (the `car` extra) is installed, without importing it."""
    return _has_tensorflow()


def source_from_checkpoint(prefix: Path, metadata: dict[str, Any] | None = None) -> ModelSource:
    """The float variables of an RL-Coach TF checkpoint `<prefix>.index/.data-*/.meta` (needs TensorFlow)."""
    from drlocal.export.tfgraph import import_tf, read_checkpoint

    tf = import_tf()
    try:
        variables = read_checkpoint(prefix)
    except (tf.errors.OpError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DrlocalError(f"{prefix}: cannot read the TensorFlow checkpoint ({first}).", hint=FIX) from None
    weights = {k: np.asarray(v, np.float32) for k, v in variables.items()
               if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim >= 1}
    return ModelSource(str(prefix), weights, None, {}, metadata)


def read_source(path: str | Path, metadata: dict[str, Any] | None = None) -> ModelSource:
    """Read a `model.tar.gz`, `model.pb` or model folder; `metadata` overrides the one found inside."""
    from drlocal.store.local import is_minio_xl_path, minio_xl_error

    p = Path(path)
    if is_minio_xl_path(p):
        raise minio_xl_error(p)
    if p.is_dir():
        return _folder_source(p, metadata)
    if not p.is_file():
        raise DrlocalError(f"{p}: no such file or folder.", hint=FIX)
    if p.name.endswith((".tar.gz", ".tgz", ".tar")):
        pb, meta = _read_tar(p)
        return source_from_pb(pb, str(p), metadata or meta)
    src = source_from_pb(p.read_bytes(), str(p), metadata)
    if src.metadata is None:
        src.metadata = _read_json(p.parent / "model_metadata.json")
    return src


# ----- recognising the architecture -----

def _layers_under(weights: dict[str, np.ndarray], scope: str) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """{group: [(layer name, kernel, bias), …]} for `scope/<group>/…/<layer>/kernel` in layer order."""
    groups: dict[str, list[tuple[int, str, np.ndarray, np.ndarray]]] = {}
    for name, kernel in weights.items():
        if not name.startswith(scope + "/") or not name.endswith("/kernel"):
            continue
        parts = name[len(scope) + 1:].split("/")
        if len(parts) < 3:
            continue
        group, layer = parts[0], parts[-2]
        bias = weights.get(name[: -len("kernel")] + "bias")
        if bias is None:
            bias = np.zeros(kernel.shape[-1], np.float32)
        m = re.search(r"_(\d+)$", layer)
        groups.setdefault(group, []).append((int(m.group(1)) if m else 0, layer, kernel, bias))
    return {g: [(n, k, b) for _i, n, k, b in sorted(v, key=lambda t: (t[0], t[1]))] for g, v in groups.items()}


def _mismatch(origin: str, found: dict[str, list[tuple[int, ...]]], sensors: dict[str, int]) -> DrlocalError:
    lines = [f"{origin}: the graph's weights match no DeepRacer network (contract §7)."]
    lines.append("  found: " + "; ".join(f"{g} {v}" for g, v in found.items()))
    for net in NETWORKS:
        try:
            exp = expected_architecture(sensors, net)
        except KeyError:
            continue
        lines.append(f"  {net} expects: " + "; ".join(f"{g} {v}" for g, v in exp.items()))
    return DrlocalError("\n".join(lines), hint="only the three DeepRacer neural_network schemes can be imported.")


def _as_2d(shape: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...]:
    """A channel-axis dense kernel may be stored 2-D (Coach's Dense) or as a 1×1 conv kernel."""
    return shape[2:] if len(shape) == 4 and shape[:2] == (1, 1) and len(want) == 2 else shape


def _tower_from_groups(origin: str, groups: dict[str, list[tuple[str, np.ndarray, np.ndarray]]],
                       sensors: dict[str, int], preferred: str | None) -> tuple[TowerSpec, str]:
    found = {g: [tuple(k.shape) for _n, k, _b in v] for g, v in groups.items()}
    candidates = list(NETWORKS)
    embedders: dict[str, list[Layer]] = {}
    for s in sorted(sensors):
        layers = groups.get(s, [])
        shapes = [tuple(k.shape) for _n, k, _b in layers]
        if s in LIDARS:
            want = [(sensors[s], LIDAR_DENSE[0]), (LIDAR_DENSE[0], LIDAR_DENSE[1])]
            if shapes != want:
                raise _mismatch(origin, found, sensors)
            embedders[s] = [Layer(n, "dense", k, b) for n, k, b in layers]
            continue
        ok = []
        for net in candidates:
            want, _ = camera_kernel_shapes(s, net)
            if len(shapes) == len(want) and [_as_2d(sh, w) for sh, w in zip(shapes, want, strict=True)] == want:
                ok.append(net)
        candidates = ok
        if not candidates:
            raise _mismatch(origin, found, sensors)
        _, strides = camera_kernel_shapes(s, candidates[0])
        out = []
        for i, (n, k, b) in enumerate(layers):
            if k.ndim == 4 and i < len(strides):
                out.append(Layer(n, "conv", k, b, stride=strides[i]))
            else:
                out.append(Layer(n, "chdense", k.reshape(k.shape[-2], k.shape[-1]), b))
        embedders[s] = out
    mw_groups = [g for g in groups if g.startswith("middleware")]
    mw = groups[mw_groups[0]] if mw_groups else []
    sizes = [int(k.shape[1]) for _n, k, _b in mw]
    candidates = [n for n in candidates if MIDDLEWARE[n] == sizes]
    if not candidates:
        raise _mismatch(origin, found, sensors)
    network = preferred if preferred in candidates else candidates[0]
    if [tuple(k.shape) for _n, k, _b in mw] != expected_architecture(sensors, network)["middleware"]:
        raise _mismatch(origin, found, sensors)
    return TowerSpec(embedders, [Layer(n, "dense", k, b) for n, k, b in mw]), network


def _sensors(src: ModelSource, groups: dict[str, Any]) -> dict[str, int]:
    sensors: dict[str, int] = {}
    if src.inputs is not None:
        bad = []
        for name, shape in src.inputs.items():
            m = _INPUT.match(name)
            if m and m.group(2) == m.group(3) and m.group(2) in KNOWN_SENSORS:
                sensors[m.group(2)] = int(shape[-1]) if m.group(2) in LIDARS and shape else 0
            else:
                bad.append(name)
        if not sensors:
            raise DrlocalError(
                f"{src.origin}: no DeepRacer input placeholder (found {', '.join(bad) or 'none'}); expected "
                "main_level/agent/{main|policy}/online/network_0/<SENSOR>/<SENSOR> with SENSOR one of "
                f"{', '.join(KNOWN_SENSORS)}.", hint=FIX)
    else:
        sensors = {g: 0 for g in groups if g in KNOWN_SENSORS}
        for s in list(sensors):
            if s in LIDARS:
                sensors[s] = int(groups[s][0][1].shape[0])
    return sensors


def spec_from_source(src: ModelSource) -> PolicySpec:
    """Recognise the network in `src` and return its weights as a spec; clear errors otherwise."""
    if src.inputs is not None and not src.output_ops:
        raise DrlocalError(
            f"{src.origin}: no DeepRacer output tensor; expected {PPO_OUTPUT} (clipped PPO) or {SAC_OUTPUT} (SAC).",
            hint=FIX)
    sac = SAC_OUTPUT in src.output_ops if src.inputs is not None else \
        any(k.startswith(policy_scope("sac") + "/") for k in src.weights)
    algorithm = "sac" if sac else "clipped_ppo"
    scope = policy_scope(algorithm)
    groups = _layers_under(src.weights, scope)
    if not groups:
        raise DrlocalError(f"{src.origin}: no weights under {scope}/ (RL-Coach's policy network).", hint=FIX)
    sensors = _sensors(src, groups)
    md = src.metadata or {}
    tower, network = _tower_from_groups(src.origin, groups, sensors, md.get("neural_network"))
    head_group = groups.get("sac_policy_head_0" if sac else "ppo_head_0", [])
    heads = {n: (k, b) for n, k, b in head_group}
    d = tower.middleware[-1].kernel.shape[1]
    if sac:
        mean = heads.get("policy_mean")
        hidden = [(n, k, b) for n, k, b in head_group if n != "policy_mean" and k.shape[0] == d
                  and mean is not None and k.shape[1] == mean[0].shape[0]]
        if mean is None or not hidden or mean[0].shape[1] != 2:
            found = [(n, k.shape) for n, k, _ in head_group]
            raise DrlocalError(f"{src.origin}: SAC head not recognised (found {found}; expected "
                               f"sac_policy_head_0/dense ({d}, 256) and policy_mean (256, 2)).", hint=FIX)
        hidden.sort(key=lambda t: t[0] != "dense")
        head = [Layer("dense", "dense", hidden[0][1], hidden[0][2]),
                Layer("policy_mean", "dense", *mean, relu=False)]
        return PolicySpec("sac", True, network, sensors, tower, head)
    op = src.output_ops.get(PPO_OUTPUT)
    continuous = "policy_mean" in heads and "policy_fc" not in heads
    if op is not None:
        continuous = op != "Softmax"
    key = "policy_mean" if continuous else "policy_fc"
    if key not in heads or heads[key][0].shape[0] != d:
        raise DrlocalError(f"{src.origin}: PPO head not recognised (found {[(n, k.shape) for n, k, _ in head_group]}; "
                           f"expected ppo_head_0/{key} with a ({d}, actions) kernel).", hint=FIX)
    log_std = src.weights.get(f"{scope}/ppo_head_0/policy_log_std")
    spec = PolicySpec("clipped_ppo", continuous, network, sensors, tower,
                      [Layer(key, "dense", *heads[key], relu=False)],
                      log_std.reshape(-1) if continuous and log_std is not None else
                      (np.zeros(2, np.float32) if continuous else None))
    vgroups = _layers_under(src.weights, "main_level/agent/main/online/network_0")
    vout = {n: (k, b) for n, k, b in vgroups.get("v_values_head_0", [])}
    if "output" in vout:  # a TF checkpoint also holds the value network
        vtower, _ = _tower_from_groups(src.origin, vgroups, sensors, network)
        spec.value = (vtower, Layer("output", "dense", *vout["output"], relu=False))
    return spec


def metadata_for(spec: PolicySpec, metadata: dict[str, Any] | None, origin: str) -> dict[str, Any]:
    """The model_metadata.json to store: the given one, checked against the graph, with its network set."""
    if metadata is None:
        raise DrlocalError(f"{origin}: no model_metadata.json found next to the model.",
                           hint="pass the action space with --metadata model_metadata.json.")
    from drlocal.config.model_metadata import load_model_metadata

    md = load_model_metadata(dict(metadata))
    problems = []
    if sorted(md.sensor) != spec.sensor_names:
        problems.append(f"sensors {sorted(md.sensor)} in model_metadata.json, {spec.sensor_names} in the graph")
    if md.training_algorithm != spec.algorithm:
        problems.append(f"training_algorithm {md.training_algorithm} in model_metadata.json, {spec.algorithm} graph")
    if md.is_continuous != spec.continuous:
        problems.append(f"action space {'continuous' if md.is_continuous else 'discrete'} in model_metadata.json, "
                        f"{'continuous' if spec.continuous else 'discrete'} graph")
    elif not spec.continuous and len(md.action_space) != spec.num_outputs:  # type: ignore[arg-type]
        problems.append(f"{len(md.action_space)} actions in model_metadata.json, "  # type: ignore[arg-type]
                        f"{spec.num_outputs} outputs in the graph")
    if problems:
        raise DrlocalError(f"{origin}: model_metadata.json does not fit the graph: " + "; ".join(problems) + ".",
                           hint="pass the model_metadata.json the model was trained with (--metadata).")
    out = md.to_json_dict()
    out["neural_network"] = spec.network
    return out


def read_metadata_file(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data = _read_json(Path(path))
    if data is None:
        raise DrlocalError(f"{path}: no such file.",
                           hint="pass an existing model_metadata.json, or leave out --metadata to use the one in the "
                           "model archive or folder.")
    return data


@dataclass
class ImportResult:
    """Where an imported model went and what it is."""

    root: Path
    checkpoint: str
    spec: PolicySpec
    metadata: dict[str, Any]
    fresh: list[str]  # networks initialised fresh (not in the source)
    source: str = ""  # the form read: drlocal | tensorflow | frozen-graph
    history: list[str] = field(default_factory=list)  # history files and folders copied from a model folder


def model_state_from_spec(spec: PolicySpec, seed: int = 0) -> tuple[Any, list[str]]:
    """drlocal's `model` payload entry for a spec (PPOActorCritic state, or SAC's {policy, q, v, v_target})
    and the networks the spec does not hold, initialised fresh (seeded)."""
    import copy

    from drlocal.export.spec import torch_from_spec
    from drlocal.learn.sac import TwinQ, ValueNet

    module = torch_from_spec(spec, seed)
    if spec.algorithm == "sac":
        q, v = TwinQ(spec.sensors, spec.network), ValueNet(spec.sensors, spec.network)
        state = {"policy": module.state_dict(), "q": q.state_dict(), "v": v.state_dict(),
                 "v_target": copy.deepcopy(v).state_dict()}
        return state, ["Q networks", "V network"]
    return module.state_dict(), ([] if spec.value is not None else ["value tower (network_0)"])


#: a model prefix's history, copied with the chosen checkpoint: folders, then single files
HISTORY_DIRS = ("metrics", "training-simtrace")
HISTORY_FILES = ("reward_function.py", "ip/hyperparameters.json")


def _copy_history(src: Path, dst: Path) -> list[str]:
    """Copy metrics/, training-simtrace/, evaluation-*/, the side files and training_params*.yaml."""
    import shutil

    copied = []
    dirs = [d for d in HISTORY_DIRS if (src / d).is_dir()]
    dirs += sorted(d.name for d in src.glob("evaluation-*") if d.is_dir())
    for d in dirs:
        shutil.copytree(src / d, dst / d, dirs_exist_ok=True)
        copied.append(d + "/")
    files = [f for f in HISTORY_FILES if (src / f).is_file()]
    files += sorted(f.name for f in src.glob("training_params*.yaml") if f.is_file())
    for f in files:
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / f, dst / f)
        copied.append(f)
    if not (src / "ip/hyperparameters.json").is_file() and (src / "hyperparameters.json").is_file():
        (dst / "ip").mkdir(parents=True, exist_ok=True)  # a DeepRacer-on-AWS folder keeps it at the root
        shutil.copy2(src / "hyperparameters.json", dst / "ip/hyperparameters.json")
        copied.append("ip/hyperparameters.json")
    return copied


def _imported_trainer_state(root: Path, number: int, step: int, entry: dict[str, Any]) -> dict[str, Any]:
    """Trainer state for a foreign checkpoint that continues its copied history: checkpoint numbering from
    N, the episode count of TrainingMetrics.json and the next simtrace iteration, so that `--resume` neither
    renumbers nor overwrites the history."""
    from drlocal.learn.trainer import TrainerState

    state = TrainerState(checkpoint=number, env_steps=step, best=entry)
    metrics = _read_json(root / "metrics" / "TrainingMetrics.json") or {}
    episodes = [e.get("episode") for e in metrics.get("metrics", []) if isinstance(e, dict)]
    state.episodes = max((int(e) for e in episodes if isinstance(e, int | float)), default=0)
    its = [int(m.group(1)) for p in (root / "training-simtrace").glob("*-iteration.csv")
           if (m := re.match(r"^(\d+)-iteration\.csv$", p.name))]
    state.iteration = max(its) + 1 if its else 0
    return state.__dict__.copy()


def _clear_destination(store: Any, force: bool, with_history: bool) -> None:
    import shutil

    if store.checkpoints() and not force:
        raise DrlocalError(f"{store.root}: already holds a model.",
                           hint="choose another --prefix, or --force to replace it.")
    for old in store.checkpoints():
        for f in store.checkpoint_files(old):
            f.unlink(missing_ok=True)
    for f in ("deepracer_checkpoints.json", ".coach_checkpoint", ".optimizer.pt"):
        (store.model_dir / f).unlink(missing_ok=True)
    if with_history:
        for d in [*(store.root / h for h in HISTORY_DIRS), *store.root.glob("evaluation-*")]:
            if d.is_dir():
                shutil.rmtree(d)


def _import_checkpoint(src_store: Any, store: Any, which: str | int, override: dict[str, Any] | None,
                       seed: int, force: bool) -> ImportResult:
    """One checkpoint of a model folder with checkpoints in model/, under its own name, with the history."""
    from drlocal.export.drfc import foreign_payload, spec_from_payload
    from drlocal.learn.trainer import FORMAT, TrainerState
    from drlocal.store.local import atomic_write_bytes, atomic_write_json

    name = src_store.resolve_checkpoint(which)
    forms = src_store.checkpoint_forms(name)
    entry = src_store.checkpoint_entry(name) or {"name": str(name), "avg_eval_metric": 0.0, "time_stamp": 0.0}
    if "drlocal" in forms:
        payload = src_store.load_checkpoint(name)
        if not payload.get("model_metadata"):
            payload["model_metadata"] = _read_json(src_store.model_dir / "model_metadata.json")
        spec = spec_from_payload(payload)
        metadata = metadata_for(spec, override or payload["model_metadata"], str(src_store.checkpoint_path(name)))
        trainer, fresh, source = payload.get("trainer") or TrainerState().__dict__.copy(), [], "drlocal"
    else:
        payload, spec = foreign_payload(src_store, name, forms, metadata=override, seed=seed)
        metadata, fresh, source = payload["model_metadata"], list(payload["fresh"]), payload["source"]
        trainer = _imported_trainer_state(src_store.root, name.number, name.step, entry)
    _clear_destination(store, force, with_history=True)
    history = _copy_history(src_store.root, store.root)
    original = src_store.model_dir / "model_metadata.json"
    orig_md = _read_json(original) if original.is_file() and override is None else None
    if orig_md is not None and orig_md.get("neural_network", NETWORKS[0]) == metadata["neural_network"]:
        atomic_write_bytes(store.model_dir / "model_metadata.json", original.read_bytes())
    else:
        atomic_write_json(store.model_dir / "model_metadata.json", metadata)
    for f in src_store.checkpoint_files(name):  # DRfC's own files of that checkpoint, as they are
        if not f.name.endswith(".pt"):
            atomic_write_bytes(store.model_dir / f.name, f.read_bytes())
    out = {"format": FORMAT, "algorithm": spec.algorithm, "model": payload["model"], "optimizer": None,
           "trainer": trainer, "model_metadata": metadata, "imported_form": source,
           "imported_from": f"{src_store.root.resolve()} ({name})"}
    store.save_checkpoint(name, out, best=None)
    store.write_checkpoints_json(entry, entry)
    return ImportResult(store.root, str(name), spec, metadata, fresh, source, history)


def _model_folder_store(p: Path) -> Any:
    """The ModelStore of a folder whose model/ holds checkpoints (a prefix, or its model/ folder itself)."""
    from drlocal.store.local import ModelStore

    if not p.is_dir():
        return None
    for root in (p, p.parent) if p.name == "model" else (p,):
        store = ModelStore(root)
        if store.checkpoints():
            return store
    return None


def import_model(path: str | Path, dest: Path, *, metadata_path: Path | None = None, force: bool = False,
                 seed: int = 0, checkpoint: str | int = "last") -> ImportResult:
    """Store the model at `path` as drlocal model prefix `dest`.

    A model folder with checkpoints in `model/` (DRfC / SageMaker prefix, DeepRacer-on-AWS folder, a drlocal
    prefix): the `checkpoint` (best | last | N, as DeepRacer resolves them) keeps its name and number
    (`3_Step-1234.ckpt.pt`, next to the source's TF files and `model_3.pb`), deepracer_checkpoints.json
    points best and last at it with the source's avg_eval_metric / time_stamp, and the prefix's history is
    copied (metrics/, training-simtrace/, evaluation-*/, ip/hyperparameters.json, reward_function.py,
    training_params*.yaml, model/model_metadata.json). A `model.tar.gz`, `model.pb` or a folder with
    a single frozen graph: checkpoint 0 (best = last = 0). The prefix then works with `drlocal evaluate`
    and as DR_LOCAL_S3_PRETRAINED_PREFIX.
    """
    from drlocal.store.local import (
        CheckpointName,
        ModelStore,
        atomic_write_bytes,
        atomic_write_json,
        is_minio_xl_path,
        minio_xl_error,
    )

    p = Path(path)
    if is_minio_xl_path(p):
        raise minio_xl_error(p)
    override = read_metadata_file(metadata_path)
    store = ModelStore(dest)
    src_store = _model_folder_store(p)
    if src_store is not None:
        if src_store.root.resolve() == store.root.resolve():
            raise DrlocalError(f"{dest}: is the model being imported.", hint="choose another --prefix.")
        return _import_checkpoint(src_store, store, checkpoint, override, seed, force)
    if str(checkpoint).strip().lower() not in ("best", "last", "0"):
        raise DrlocalError(f"{p}: holds a single model; checkpoint {checkpoint!r} applies to model folders with "
                           "checkpoints in model/.", hint="leave the checkpoint at last (or best).")
    src = read_source(p, override)
    spec = spec_from_source(src)
    metadata = metadata_for(spec, src.metadata, src.origin)
    _clear_destination(store, force, with_history=False)
    state, fresh = model_state_from_spec(spec, seed)
    from drlocal.learn.trainer import FORMAT, TrainerState

    name = CheckpointName(0, 0)
    atomic_write_json(store.model_dir / "model_metadata.json", metadata)
    payload = {"format": FORMAT, "algorithm": spec.algorithm, "model": state, "optimizer": None,
               "trainer": TrainerState().__dict__.copy(), "model_metadata": metadata,
               "imported_from": str(p.resolve())}
    store.save_checkpoint(name, payload, best=None)
    entry = {"name": str(name), "avg_eval_metric": 0.0, "time_stamp": 0.0}
    store.write_checkpoints_json(entry, entry)
    if src.pb is not None:
        atomic_write_bytes(store.model_dir / "model_0.pb", src.pb)  # the original graph, DeepRacer's model_<N>.pb
    for fname, data in (src.side_files or {}).items():
        dst = store.root / ("ip/hyperparameters.json" if fname == "hyperparameters.json" else fname)
        atomic_write_bytes(dst, data)
    source = "frozen-graph" if src.pb is not None else "tensorflow"
    return ImportResult(store.root, str(name), spec, metadata, fresh, source)
