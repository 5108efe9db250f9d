"""The TensorFlow-1 graph the car runs, written from a `PolicySpec` (needs the `car` extra).

The car's stacks (stock OpenVINO model optimizer, community TFLite/OpenVINO) load a frozen
TF1 GraphDef and address it by tensor names only (contract §7.3), so the graph is built with
`tf.compat.v1` exactly as RL-Coach lays it out: float placeholders
`main_level/agent/{main|policy}/online/network_0/<SENSOR>/<SENSOR>`, /255 inside, VALID NHWC
convolutions, the channel-axis dense layers, a channels-last flatten, the middleware, and the
head whose output op is `…/ppo_head_0/policy` (softmax, or the mean for continuous PPO) or
`…/sac_policy_head_0/policy` (SAC pre-tanh mean). Weights are Const nodes named like Coach's
frozen variables (`…/network_1/FRONT_FACING_CAMERA/Conv2d_0/kernel`), which is also what
`drlocal import` reads back.

`write_coach_checkpoint` writes the same networks as variables through a TF Saver, with the
variable names RL-Coach restores (`main_level/agent/main/{online,target}/network_{0,1}/…`), for
DeepRacer-on-AWS's model import.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drlocal.errors import DrlocalError
from drlocal.export.spec import (
    MIDDLEWARE_SCOPE,
    Layer,
    PolicySpec,
    TowerSpec,
    input_name,
    output_name,
    policy_scope,
)
from drlocal.learn.networks import IMAGE_H, IMAGE_W, LIDARS, STEREO


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what TensorFlow's C++ side prints on fd 2 (oneDNN notices, converter logs): TF 2.21
    ignores TF_CPP_MIN_LOG_LEVEL for those, and the CLI promises one readable message per problem.
    Python exceptions are unaffected; where fd 2 is not a real file (pytest capture) nothing changes."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


def import_tf() -> Any:
    """TensorFlow, or a clear error naming the extra that installs it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter is not the user's business
    try:
        with quiet_native_stderr():
            import tensorflow as tf
    except ImportError as exc:
        raise DrlocalError(
            "TensorFlow is not installed; it is needed to write the car's TensorFlow graph and checkpoint.",
            hint="pip install 'drlocal[car]' (tensorflow-cpu, openvino, onnx, onnxruntime).",
        ) from exc
    return tf


def input_shape(sensor: str, size: int) -> list[int | None]:
    """Placeholder shape: [None, 120, 160, 1|2] for cameras, [None, size] for lidars."""
    if sensor in LIDARS:
        return [None, size]
    return [None, IMAGE_H, IMAGE_W, 2 if sensor == STEREO else 1]


Make = Callable[[str, np.ndarray], Any]


def _layer(tf: Any, x: Any, layer: Layer, scope: str, make: Make) -> Any:
    base = f"{scope}/{layer.name}"
    k = make(f"{base}/kernel", layer.kernel.astype(np.float32))
    b = make(f"{base}/bias", layer.bias.astype(np.float32))
    if layer.kind == "conv":
        y = tf.nn.conv2d(x, k, strides=[1, layer.stride, layer.stride, 1], padding="VALID", name=f"{base}/Conv2D")
    elif layer.kind == "chdense":  # Dense on the channel axis of the map == 1x1 convolution
        k4 = tf.reshape(k, [1, 1, *layer.kernel.shape], name=f"{base}/Tensordot/Reshape")
        y = tf.nn.conv2d(x, k4, strides=[1, 1, 1, 1], padding="VALID", name=f"{base}/Tensordot")
    else:
        y = tf.linalg.matmul(x, k, name=f"{base}/MatMul")
    y = tf.nn.bias_add(y, b, name=f"{base}/BiasAdd")
    if layer.relu:
        m = re.match(r"^(?:Conv2d|Dense)_(\d+)$", layer.name)
        act = f"{scope}/BatchnormActivationDropout_{int(m.group(1)) + 1}_activation" if m else f"{base}/Relu"
        y = tf.nn.relu(y, name=act)
    return y


def _tower(tf: Any, tower: TowerSpec, inputs: dict[str, Any], scope: str, make: Make) -> Any:
    feats = []
    for s in sorted(tower.embedders):
        sc = f"{scope}/{s}"
        x = inputs[s] if s in LIDARS else tf.math.truediv(inputs[s], 255.0, name=f"{sc}/truediv")
        for layer in tower.embedders[s]:
            x = _layer(tf, x, layer, sc, make)
        if x.shape.rank == 4:
            h, w, c = (int(d) for d in x.shape[1:])
            x = tf.reshape(x, [-1, h * w * c], name=f"{sc}/Flatten/flatten/Reshape")  # channels-last order
        feats.append(x)
    x = feats[0] if len(feats) == 1 else tf.concat(feats, axis=-1, name=f"{scope}/concat")
    for layer in tower.middleware:
        x = _layer(tf, x, layer, f"{scope}/{MIDDLEWARE_SCOPE}", make)
    return x


def _placeholders(tf: Any, spec: PolicySpec) -> dict[str, Any]:
    return {s: tf.compat.v1.placeholder(tf.float32, input_shape(s, spec.sensors[s]),
                                        name=input_name(s, spec.algorithm))
            for s in spec.sensor_names}


def _policy(tf: Any, spec: PolicySpec, inputs: dict[str, Any], make: Make) -> Any:
    """Policy tower + head; returns the output tensor named as the car expects."""
    scope = policy_scope(spec.algorithm)
    x = _tower(tf, spec.tower, inputs, scope, make)
    head_scope = f"{scope}/{'sac_policy_head_0' if spec.algorithm == 'sac' else 'ppo_head_0'}"
    for layer in spec.head:
        x = _layer(tf, x, layer, head_scope, make)
    if spec.algorithm == "clipped_ppo" and not spec.continuous:
        return tf.nn.softmax(x, name=output_name(spec.algorithm))
    return tf.identity(x, name=output_name(spec.algorithm))


def frozen_graph(spec: PolicySpec) -> bytes:
    """The serialized frozen GraphDef (`model.pb`) of the policy: weights as Const nodes."""
    tf = import_tf()
    g = tf.Graph()
    with g.as_default():
        inputs = _placeholders(tf, spec)
        _policy(tf, spec, inputs, lambda name, a: tf.constant(a, name=name))
    return g.as_graph_def().SerializeToString()


def run_frozen_graph(pb: bytes, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    """Run a frozen graph with TensorFlow (the reference the car's converters start from)."""
    tf = import_tf()
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(pb)
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=g) as sess:
        return sess.run(f"{output}:0", {f"{k}:0": v for k, v in feeds.items()})


def _tower_values(tower: TowerSpec, scope: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    layers = [(f"{scope}/{s}", ly) for s in sorted(tower.embedders) for ly in tower.embedders[s]]
    layers += [(f"{scope}/{MIDDLEWARE_SCOPE}", ly) for ly in tower.middleware]
    for sc, ly in layers:
        out[f"{sc}/{ly.name}/kernel"] = ly.kernel.astype(np.float32)
        out[f"{sc}/{ly.name}/bias"] = ly.bias.astype(np.float32)
    return out


VALUE_SCOPE = "main_level/agent/main/online/network_0"


def coach_values(spec: PolicySpec) -> dict[str, np.ndarray]:
    """RL-Coach variable name -> value (TF layout) of every variable `write_coach_checkpoint` saves."""
    scope = policy_scope(spec.algorithm)
    values = _tower_values(spec.tower, scope)
    head_scope = f"{scope}/{'sac_policy_head_0' if spec.algorithm == 'sac' else 'ppo_head_0'}"
    for ly in spec.head:
        values[f"{head_scope}/{ly.name}/kernel"] = ly.kernel.astype(np.float32)
        values[f"{head_scope}/{ly.name}/bias"] = ly.bias.astype(np.float32)
    if spec.algorithm != "clipped_ppo":
        return values
    if spec.continuous:
        values[f"{scope}/ppo_head_0/policy_log_std"] = np.asarray(spec.log_std, np.float32).reshape(1, -1)
    if spec.value is not None:
        values.update(_tower_values(spec.value[0], VALUE_SCOPE))
        out = spec.value[1]
        values[f"{VALUE_SCOPE}/v_values_head_0/{out.name}/kernel"] = out.kernel.astype(np.float32)
        values[f"{VALUE_SCOPE}/v_values_head_0/{out.name}/bias"] = out.bias.astype(np.float32)
    for n in [n for n in values if "/online/" in n]:  # Coach's target ("old policy") copies
        values[n.replace("/online/", "/target/", 1)] = values[n]
    return values


def build_coach_variables(tf: Any, spec: PolicySpec) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """In the current graph: the networks of `spec` as zero-initialised variables named as RL-Coach names
    them; returns ({name: variable}, {name: value})."""
    v1 = tf.compat.v1
    values = coach_values(spec)

    def make(var_name: str, a: np.ndarray) -> Any:
        return v1.Variable(tf.zeros(a.shape, tf.float32), name=var_name)

    inputs = _placeholders(tf, spec)
    _policy(tf, spec, inputs, make)
    if spec.algorithm == "clipped_ppo":
        if spec.continuous:
            n = f"{policy_scope('clipped_ppo')}/ppo_head_0/policy_log_std"
            make(n, values[n])
        if spec.value is not None:
            v = _tower(tf, spec.value[0], inputs, VALUE_SCOPE, make)
            _layer(tf, v, spec.value[1], f"{VALUE_SCOPE}/v_values_head_0", make)
        for n in [n for n in values if "/target/" in n]:
            make(n, values[n])
    variables = {v.op.name: v for v in v1.global_variables()}
    if set(variables) != set(values):
        raise RuntimeError(f"coach variable names differ: {sorted(set(variables) ^ set(values))[:4]}")
    return variables, values


def write_coach_checkpoint(spec: PolicySpec, model_dir: Path, name: str) -> list[Path]:
    """`<name>.index/.data-00000-of-00001/.meta` with RL-Coach's variable names, online and target copies.

    PPO: `main_level/agent/main/{online,target}/network_0` (value tower + `v_values_head_0/output`)
    and `network_1` (policy tower + `ppo_head_0/{policy_fc|policy_mean}`, continuous
    `ppo_head_0/policy_log_std` (1, 2)). SAC: the policy network
    `main_level/agent/policy/online/network_0` only (drlocal does not map its Q and V networks).
    Optimizer slots and counters are not written.
    """
    tf = import_tf()
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        variables, values = build_coach_variables(tf, spec)
        saver = v1.train.Saver(var_list=variables, max_to_keep=None)
        with v1.Session(graph=g) as sess:
            for n, var in variables.items():  # feed the values instead of baking them into the .meta graph
                sess.run(var.initializer, {var.initial_value: values[n]})
            model_dir.mkdir(parents=True, exist_ok=True)
            saver.save(sess, str(model_dir / name), write_meta_graph=True, write_state=False)
    return [model_dir / f"{name}{ext}" for ext in (".index", ".data-00000-of-00001", ".meta")]


def read_checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint (DRfC / console / DeepRacer-on-AWS model folders)."""
    tf = import_tf()
    reader = tf.train.load_checkpoint(str(prefix))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}
