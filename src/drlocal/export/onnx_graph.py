"""The policy as an ONNX graph, for runtimes other than the car's (no car stack reads ONNX).

Written directly from the `PolicySpec` with `onnx.helper` rather than through `torch.onnx`:
the graph then has the car graph's tensor names and float NHWC inputs (/255 inside), and no
exporter version quirks. Opset 17, IR version 8 so that older onnxruntime builds load it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drlocal.errors import DrlocalError
from drlocal.export.spec import MIDDLEWARE_SCOPE, Layer, PolicySpec, input_name, output_name, policy_scope
from drlocal.export.tfgraph import input_shape
from drlocal.learn.networks import LIDARS


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise DrlocalError("onnx is not installed.", hint="pip install 'drlocal[car]'.") from exc
    return onnx


def onnx_model(spec: PolicySpec) -> bytes:
    """Serialized ONNX model computing the car graph's `policy` output from the same inputs."""
    onnx = import_onnx()
    h, tp = onnx.helper, onnx.TensorProto
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, a: np.ndarray) -> str:
        inits.append(onnx.numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def layer(x: str, lay: Layer, scope: str) -> str:
        base = f"{scope}/{lay.name}"
        b = const(f"{base}/bias", lay.bias.astype(np.float32))
        if lay.kind in ("conv", "chdense"):
            k = lay.kernel.transpose(3, 2, 0, 1) if lay.kind == "conv" else lay.kernel.T[:, :, None, None]
            w = const(f"{base}/kernel", k.astype(np.float32))  # OIHW
            nodes.append(h.make_node("Conv", [x, w, b], [f"{base}/BiasAdd"], strides=[lay.stride] * 2))
        else:
            w = const(f"{base}/kernel", lay.kernel.astype(np.float32))
            nodes.append(h.make_node("Gemm", [x, w, b], [f"{base}/BiasAdd"]))
        y = f"{base}/BiasAdd"
        if lay.relu:
            nodes.append(h.make_node("Relu", [y], [f"{base}/Relu"]))
            y = f"{base}/Relu"
        return y

    scope = policy_scope(spec.algorithm)
    inputs, feats = [], []
    for s in spec.sensor_names:
        name = input_name(s, spec.algorithm)
        shape = ["N" if d is None else d for d in input_shape(s, spec.sensors[s])]
        inputs.append(h.make_tensor_value_info(name, tp.FLOAT, shape))
        sc = f"{scope}/{s}"
        x = name
        if s not in LIDARS:
            scale = const(f"{sc}/scale", np.array(255.0, np.float32))
            nodes.append(h.make_node("Div", [name, scale], [f"{sc}/truediv"]))
            nodes.append(h.make_node("Transpose", [f"{sc}/truediv"], [f"{sc}/nchw"], perm=[0, 3, 1, 2]))
            x = f"{sc}/nchw"
        for lay in spec.tower.embedders[s]:
            x = layer(x, lay, sc)
        if s not in LIDARS:
            nodes.append(h.make_node("Transpose", [x], [f"{sc}/nhwc"], perm=[0, 2, 3, 1]))
            nodes.append(h.make_node("Flatten", [f"{sc}/nhwc"], [f"{sc}/flatten"], axis=1))  # HWC order, as TF
            x = f"{sc}/flatten"
        feats.append(x)
    x = feats[0]
    if len(feats) > 1:
        nodes.append(h.make_node("Concat", feats, [f"{scope}/concat"], axis=1))
        x = f"{scope}/concat"
    for lay in spec.tower.middleware:
        x = layer(x, lay, f"{scope}/{MIDDLEWARE_SCOPE}")
    head_scope = f"{scope}/{'sac_policy_head_0' if spec.algorithm == 'sac' else 'ppo_head_0'}"
    for lay in spec.head:
        x = layer(x, lay, head_scope)
    out = output_name(spec.algorithm)
    if spec.algorithm == "clipped_ppo" and not spec.continuous:
        nodes.append(h.make_node("Softmax", [x], [out], axis=-1))
    else:
        nodes.append(h.make_node("Identity", [x], [out]))
    graph = h.make_graph(nodes, "deepracer_policy", inputs,
                         [h.make_tensor_value_info(out, tp.FLOAT, ["N", spec.num_outputs])], inits)
    model = h.make_model(graph, producer_name="drlocal", opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def run_onnx(data: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Run the ONNX model with onnxruntime (CPU)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise DrlocalError("onnxruntime is not installed.", hint="pip install 'drlocal[car]'.") from exc
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]
