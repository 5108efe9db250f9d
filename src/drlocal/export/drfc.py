"""DRfC / SageMaker checkpoints next to drlocal's: read in place, and written beside drlocal's own.

A DeepRacer model prefix keeps, per checkpoint `<N>_Step-<M>.ckpt` (simapp `tensorflow_model.py`,
DRfC `scripts/upload/upload-model.sh`):

    model/<N>_Step-<M>.ckpt.{index,data-00000-of-00001,meta}   RL-Coach's TF checkpoint (policy + value network)
    model/model_<N>.pb                                          the frozen policy graph the car runs
    model/.coach_checkpoint, deepracer_checkpoints.json         pointers: latest / best and last

Reading (`foreign_payload`, used by `ModelStore.load_checkpoint` and `drlocal import`): the TF
checkpoint when TensorFlow is installed (PPO's value network comes back too), else `model_<N>.pb`
(parsed without TensorFlow; PPO's value tower, or SAC's Q and V networks, start fresh and the
payload's `fresh` says so). A checkpoint held only as TF files without TensorFlow is a clear error
naming the `car` extra. The architecture is recognised by the importer (`importer.spec_from_source`)
and rebuilt with `spec.torch_from_spec`, the same conversion `drlocal import` uses.

Writing (`write_drfc_checkpoint`): the same files for a drlocal checkpoint payload, with RL-Coach's
variable names (`tfgraph.write_coach_checkpoint`, value network included) and the frozen graph
(`tfgraph.frozen_graph`), so that `upload-model.sh` (which copies `model/${N}*` and `model_${N}.pb`),
the simapp and `drlocal import` find what they expect. Every file is renamed into place complete
(the `.index`, which marks a TF checkpoint as present, last). The TF graph and session of an
architecture are built once per process and reused for later checkpoints.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from drlocal.errors import DrlocalError
from drlocal.export.spec import PolicySpec, spec_from_torch

CAR_EXTRA = "pip install 'drlocal[car]' (tensorflow-cpu, openvino, onnx, onnxruntime)."


# ----- reading -----

def _read_metadata(store: Any) -> dict[str, Any] | None:
    from drlocal.export.importer import _read_json

    return _read_json(store.model_dir / "model_metadata.json") or _read_json(store.root / "model_metadata.json")


def _to_device(state: Any, device: str | torch.device) -> Any:
    if isinstance(state, dict):
        return {k: _to_device(v, device) for k, v in state.items()}
    return state.to(device) if isinstance(state, torch.Tensor) else state


def foreign_payload(store: Any, name: Any, forms: Sequence[str], *, metadata: dict[str, Any] | None = None,
                    map_location: str | torch.device = "cpu", seed: int = 0) -> tuple[dict[str, Any], PolicySpec]:
    """(payload, spec) of a TensorFlow or frozen-graph checkpoint `name` of ModelStore `store`.

    The payload has drlocal's keys: `format` and `source` ("tensorflow" | "frozen-graph": a foreign
    checkpoint, not resumable), `algorithm`, `model` (PPOActorCritic state, SAC {policy, q, v, v_target}),
    `optimizer` and `trainer` None, `model_metadata` (`model/model_metadata.json`, checked against the
    weights, or `metadata`), `name`, `fresh` (networks not in the source, initialised fresh with `seed`),
    `origin` (the file read) and `note` (why a frozen graph was read although TF files exist)."""
    from drlocal.export.importer import (
        has_tensorflow,
        metadata_for,
        model_state_from_spec,
        source_from_checkpoint,
        source_from_pb,
        spec_from_source,
    )

    md = metadata if metadata is not None else _read_metadata(store)
    note = ""
    tf_ok = has_tensorflow()
    if "tensorflow" in forms and tf_ok:
        src, source = source_from_checkpoint(store.model_dir / str(name), md), "tensorflow"
    elif "frozen-graph" in forms:
        pb = store.model_dir / f"model_{name.number}.pb"
        src, source = source_from_pb(pb.read_bytes(), str(pb), md), "frozen-graph"
        if "tensorflow" in forms:
            note = "TensorFlow is not installed: read the frozen graph; the TF checkpoint's value network is unused"
    elif "tensorflow" in forms:
        raise DrlocalError(
            f"{store.model_dir}: checkpoint {name} is a TensorFlow checkpoint ({name}.index/.data/.meta, as "
            "DRfC and SageMaker write it) without model_" f"{name.number}.pb, and TensorFlow is not installed.",
            hint=CAR_EXTRA)
    else:
        raise DrlocalError(f"{store.model_dir}: checkpoint {name} has no TensorFlow or frozen-graph files.")
    spec = spec_from_source(src)
    md_out = metadata_for(spec, src.metadata, src.origin)
    model, fresh = model_state_from_spec(spec, seed)
    payload = {"format": source, "source": source, "algorithm": spec.algorithm,
               "model": _to_device(model, map_location), "optimizer": None, "trainer": None,
               "model_metadata": md_out, "name": str(name), "fresh": fresh, "origin": src.origin, "note": note}
    return payload, spec


def module_from_payload(payload: dict[str, Any]) -> nn.Module:
    """The policy network of a drlocal checkpoint payload (PPOActorCritic, or SACPolicy), on the CPU."""
    from drlocal.config.model_metadata import load_model_metadata
    from drlocal.learn.networks import PPOActorCritic
    from drlocal.learn.sac import SACPolicy

    md = load_model_metadata(dict(payload["model_metadata"]))
    sensors = md.input_sizes()
    state = _to_device(payload["model"], "cpu")
    if payload.get("algorithm") == "sac":
        policy = SACPolicy(sensors, md.neural_network)
        policy.load_state_dict(state["policy"])
        return policy.eval()
    n_actions = 2 if md.is_continuous else len(md.action_space)  # type: ignore[arg-type]
    model = PPOActorCritic(sensors, md.neural_network, n_actions, md.is_continuous)
    model.load_state_dict(state)
    return model.eval()


def spec_from_payload(payload: dict[str, Any]) -> PolicySpec:
    """The PolicySpec (PPO: policy and value network) of a drlocal checkpoint payload."""
    network = dict(payload["model_metadata"]).get("neural_network", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW")
    return spec_from_torch(module_from_payload(payload), network)


# ----- writing -----

def _architecture(spec: PolicySpec) -> tuple[Any, ...]:
    """What fixes the TF graph of a spec (not the weights)."""
    def tower(t: Any) -> tuple[Any, ...]:
        emb = tuple((s, tuple((ly.name, ly.kind, ly.kernel.shape, ly.stride, ly.relu) for ly in t.embedders[s]))
                    for s in sorted(t.embedders))
        return emb, tuple((ly.name, ly.kernel.shape) for ly in t.middleware)

    value = None if spec.value is None else (tower(spec.value[0]), spec.value[1].kernel.shape)
    return (spec.algorithm, spec.continuous, tuple(sorted(spec.sensors.items())), tower(spec.tower),
            tuple((ly.name, ly.kernel.shape, ly.relu) for ly in spec.head),
            None if spec.log_std is None else np.shape(spec.log_std), value)


class _CheckpointWriter:
    """A TF graph + session for one architecture: each checkpoint feeds new weights and saves."""

    def __init__(self, spec: PolicySpec) -> None:
        from drlocal.export.tfgraph import build_coach_variables, import_tf

        tf = import_tf()
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.variables, _ = build_coach_variables(tf, spec)
            self.init = [v.initializer for v in self.variables.values()]
            self.inputs = {n: v.initial_value for n, v in self.variables.items()}
            self.saver = tf.compat.v1.train.Saver(var_list=self.variables, max_to_keep=None)
        self.session = tf.compat.v1.Session(graph=self.graph)

    def save(self, values: dict[str, np.ndarray], prefix: Path) -> None:
        # feed the values instead of baking them into the .meta graph
        with self.graph.as_default():
            self.session.run(self.init, {t: values[n] for n, t in self.inputs.items()})
            self.saver.save(self.session, str(prefix), write_meta_graph=True, write_state=False)


_WRITERS: dict[tuple[Any, ...], _CheckpointWriter] = {}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_tf_checkpoint(spec: PolicySpec, model_dir: Path, name: str) -> list[Path]:
    """`<name>.index/.data-00000-of-00001/.meta` in RL-Coach's names (tfgraph.write_coach_checkpoint's
    variables), written in a temporary folder and renamed into place, the `.index` last."""
    from drlocal.export.tfgraph import coach_values, quiet_native_stderr

    key = _architecture(spec)
    writer = _WRITERS.get(key)
    if writer is None:
        with quiet_native_stderr():
            writer = _WRITERS[key] = _CheckpointWriter(spec)
    values = coach_values(spec)
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tf-checkpoint.", dir=model_dir) as tmp:
        with quiet_native_stderr():
            writer.save(values, Path(tmp) / name)
        out = []
        for ext in (".data-00000-of-00001", ".meta", ".index"):
            src, dst = Path(tmp) / f"{name}{ext}", model_dir / f"{name}{ext}"
            _fsync(src)
            os.replace(src, dst)
            out.append(dst)
    return [out[2], out[0], out[1]]


def write_drfc_checkpoint(model_dir: str | Path, name: Any, payload: dict[str, Any]) -> list[Path]:
    """Write DRfC's files of drlocal checkpoint `name` (a CheckpointName) from its payload:
    `<N>_Step-<M>.ckpt.{index,data-00000-of-00001,meta}` (RL-Coach names; PPO policy and value network,
    their target copies; SAC: the policy network) and `model_<N>.pb` (the frozen policy graph).
    Returns the paths written. Needs TensorFlow (the `car` extra)."""
    from drlocal.export.tfgraph import frozen_graph, quiet_native_stderr
    from drlocal.store.local import atomic_write_bytes

    model_dir = Path(model_dir)
    spec = spec_from_payload(payload)
    paths = write_tf_checkpoint(spec, model_dir, str(name))
    with quiet_native_stderr():
        pb = frozen_graph(spec)
    pb_path = model_dir / f"model_{name.number}.pb"
    atomic_write_bytes(pb_path, pb)
    return [*paths, pb_path]
