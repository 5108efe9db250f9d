"""A framework-neutral description of a DeepRacer policy network, in TensorFlow's weight layout.

Export and import meet here: the PyTorch networks (`learn/networks.py`, `learn/sac.py`) are turned
into a `PolicySpec` (NumPy arrays named as RL-Coach names its variables), and a `PolicySpec` is
built back into PyTorch. The TensorFlow graph, the ONNX graph and the RL-Coach checkpoint are
all written from a spec, and an imported frozen graph is read into one, so every path shares a
single weight conversion:

* conv kernels: torch (out, in, kh, kw) ↔ TF (kh, kw, in, out);
* dense kernels: torch (out, in) ↔ TF (in, out); a "dense on the channel axis" layer of an image
  embedder is a 1×1 convolution in torch and a 2-D (in, out) kernel in TF.

Names follow RL-Coach's SCHEME embedders and FC middleware: an activation layer is interleaved
after every weight layer, so weight layer k is called `Conv2d_{2k}` / `Dense_{2k}` inside the
sensor's (or `middleware_fc_embedder`'s) variable scope; heads are `ppo_head_0/policy_fc`
(discrete), `ppo_head_0/policy_mean` (continuous), `v_values_head_0/output`, and for SAC
`sac_policy_head_0/dense` (256) and `sac_policy_head_0/policy_mean`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from drlocal.errors import DrlocalError
from drlocal.learn.networks import (
    _CONV_SCHEMES,
    CAMERAS,
    IMAGE_H,
    IMAGE_W,
    LIDAR_DENSE,
    LIDARS,
    MIDDLEWARE,
    STEREO,
    PPOActorCritic,
    Tower,
    VectorEmbedder,
)
from drlocal.learn.sac import SACPolicy

PPO_AGENT, SAC_AGENT = "main", "policy"
PPO_OUTPUT = "main_level/agent/main/online/network_1/ppo_head_0/policy"
SAC_OUTPUT = "main_level/agent/policy/online/network_0/sac_policy_head_0/policy"
MIDDLEWARE_SCOPE = "middleware_fc_embedder"
KNOWN_SENSORS = (*CAMERAS, STEREO, *LIDARS)
NETWORKS = tuple(MIDDLEWARE)


def input_name(sensor: str, algorithm: str) -> str:
    """The car's input tensor name for a sensor (contract §7.3): `…/{main|policy}/online/network_0/S/S`."""
    agent = SAC_AGENT if algorithm == "sac" else PPO_AGENT
    return f"main_level/agent/{agent}/online/network_0/{sensor}/{sensor}"


def output_name(algorithm: str) -> str:
    return SAC_OUTPUT if algorithm == "sac" else PPO_OUTPUT


def policy_scope(algorithm: str) -> str:
    """Where the policy network's variables live: PPO's network_1 (policy tower), SAC's policy network_0."""
    if algorithm == "sac":
        return "main_level/agent/policy/online/network_0"
    return "main_level/agent/main/online/network_1"


@dataclass
class Layer:
    """One weight layer followed (if `relu`) by ReLU. `kind`: conv | chdense (channel axis of a map) | dense."""

    name: str  # Coach layer name inside its scope, e.g. "Conv2d_0", "Dense_2", "policy_fc"
    kind: str
    kernel: np.ndarray  # TF layout
    bias: np.ndarray
    stride: int = 1
    relu: bool = True


@dataclass
class TowerSpec:
    """Embedders (sorted sensor order) + middleware of one network."""

    embedders: dict[str, list[Layer]]
    middleware: list[Layer]


@dataclass
class PolicySpec:
    """The policy network as the car runs it, plus what is needed to rebuild the torch module."""

    algorithm: str  # clipped_ppo | sac
    continuous: bool
    network: str  # neural_network of model_metadata
    sensors: dict[str, int]  # sensor -> vector size (0 for cameras)
    tower: TowerSpec
    head: list[Layer]  # PPO: [policy_fc | policy_mean]; SAC: [dense (256), policy_mean]
    log_std: np.ndarray | None = None  # PPO continuous: state-independent log σ (2,)
    value: tuple[TowerSpec, Layer] | None = field(default=None, repr=False)  # PPO network_0, for checkpoints

    @property
    def num_outputs(self) -> int:
        return int(self.head[-1].kernel.shape[1])

    @property
    def sensor_names(self) -> list[str]:
        return sorted(self.sensors)


# ----- torch -> spec -----

def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy().copy()


def _conv_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _embedder_layers(emb: nn.Module) -> list[Layer]:
    out = []
    for k, m in enumerate(_conv_layers(emb)):
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):  # scheme convs are all ≥ 3×3
            out.append(Layer(f"Dense_{2 * k}", "chdense", _np(m.weight)[:, :, 0, 0].T, _np(m.bias)))
        elif isinstance(m, nn.Conv2d):
            out.append(Layer(f"Conv2d_{2 * k}", "conv", _np(m.weight).transpose(2, 3, 1, 0), _np(m.bias),
                             stride=int(m.stride[0])))
        else:
            out.append(Layer(f"Dense_{2 * k}", "dense", _np(m.weight).T, _np(m.bias)))
    return out


def _dense(name: str, m: nn.Linear, relu: bool) -> Layer:
    return Layer(name, "dense", _np(m.weight).T, _np(m.bias), relu=relu)


def tower_spec(tower: Tower) -> TowerSpec:
    embedders = {s: _embedder_layers(tower.embedders[s]) for s in tower.sensor_names}
    middleware = [_dense(f"Dense_{2 * k}", m, True) for k, m in enumerate(_conv_layers(tower.middleware))]
    return TowerSpec(embedders, middleware)


def _sensor_sizes(tower: Tower) -> dict[str, int]:
    sizes = {}
    for s in tower.sensor_names:
        emb = tower.embedders[s]
        sizes[s] = int(emb.body[0].in_features) if isinstance(emb, VectorEmbedder) else 0
    return sizes


def spec_from_torch(model: nn.Module, network: str) -> PolicySpec:
    """The policy of a drlocal PPO (`PPOActorCritic`) or SAC (`SACPolicy`) network as a spec."""
    if isinstance(model, SACPolicy):
        head = [_dense("dense", model.hidden[0], True), _dense("policy_mean", model.mean, False)]
        return PolicySpec("sac", True, network, _sensor_sizes(model.tower), tower_spec(model.tower), head)
    if not isinstance(model, PPOActorCritic):
        raise TypeError(f"cannot export {type(model).__name__}")
    name = "policy_mean" if model.continuous else "policy_fc"
    head = [_dense(name, model.policy_head, False)]
    log_std = _np(model.log_std) if model.continuous else None
    value = (tower_spec(model.value_tower), _dense("output", model.value_head, False))
    return PolicySpec("clipped_ppo", model.continuous, network, _sensor_sizes(model.policy_tower),
                      tower_spec(model.policy_tower), head, log_std, value)


# ----- spec -> torch -----

def _load_embedder(emb: nn.Module, layers: list[Layer]) -> None:
    mods = _conv_layers(emb)
    for m, layer in zip(mods, layers, strict=True):
        if isinstance(m, nn.Conv2d) and layer.kind == "chdense":
            w = torch.from_numpy(layer.kernel.T.copy())[:, :, None, None]
        elif isinstance(m, nn.Conv2d):
            w = torch.from_numpy(layer.kernel.transpose(3, 2, 0, 1).copy())
        else:
            w = torch.from_numpy(layer.kernel.T.copy())
        _assign(m, w, layer)


def _assign(m: nn.Module, w: torch.Tensor, layer: Layer) -> None:
    if tuple(m.weight.shape) != tuple(w.shape) or tuple(m.bias.shape) != layer.bias.shape:
        raise DrlocalError(f"layer {layer.name}: weights {tuple(w.shape)} do not fit {tuple(m.weight.shape)}.")
    with torch.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(torch.from_numpy(layer.bias.copy()))


def _load_tower(tower: Tower, spec: TowerSpec) -> None:
    for s in tower.sensor_names:
        _load_embedder(tower.embedders[s], spec.embedders[s])
    for m, layer in zip(_conv_layers(tower.middleware), spec.middleware, strict=True):
        _assign(m, torch.from_numpy(layer.kernel.T.copy()), layer)


def _load_linear(m: nn.Linear, layer: Layer) -> None:
    _assign(m, torch.from_numpy(layer.kernel.T.copy()), layer)


def torch_from_spec(spec: PolicySpec, seed: int = 0) -> nn.Module:
    """Rebuild the drlocal network. PPO's value tower is not in a frozen policy graph: it is freshly
    initialised (seeded) unless the spec carries one, so an imported model can be trained further."""
    torch.manual_seed(seed)
    if spec.algorithm == "sac":
        model: nn.Module = SACPolicy(spec.sensors, spec.network)
        _load_tower(model.tower, spec.tower)
        _load_linear(model.hidden[0], spec.head[0])
        _load_linear(model.mean, spec.head[1])
        return model.eval()
    ppo = PPOActorCritic(spec.sensors, spec.network, spec.num_outputs, spec.continuous)
    _load_tower(ppo.policy_tower, spec.tower)
    _load_linear(ppo.policy_head, spec.head[0])
    if spec.continuous and spec.log_std is not None:
        with torch.no_grad():
            ppo.log_std.copy_(torch.from_numpy(np.asarray(spec.log_std, np.float32).reshape(-1)))
    if spec.value is not None:
        _load_tower(ppo.value_tower, spec.value[0])
        _load_linear(ppo.value_head, spec.value[1])
    return ppo.eval()


# ----- architecture identification (import) -----

def camera_kernel_shapes(sensor: str, network: str) -> tuple[list[tuple[int, ...]], list[int]]:
    """Expected TF conv kernel shapes (kh, kw, in, out) and strides of a camera embedder."""
    if sensor == "observation":
        network = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    kind = "stereo" if sensor == STEREO else "camera"
    convs, dense = _CONV_SCHEMES[(kind, network)]
    c = 2 if kind == "stereo" else 1
    shapes: list[tuple[int, ...]] = []
    for out, k, _s in convs:
        shapes.append((k, k, c, out))
        c = out
    for out in dense:
        shapes.append((c, out))
        c = out
    return shapes, [s for _o, _k, s in convs]


def expected_architecture(sensors: dict[str, int], network: str) -> dict[str, list[tuple[int, ...]]]:
    """Kernel shapes per group (each sensor, "middleware") for a network, as a readable reference."""
    out: dict[str, list[tuple[int, ...]]] = {}
    flat = 0
    for s in sorted(sensors):
        if s in LIDARS:
            d, shapes = sensors[s], []
            for u in LIDAR_DENSE:
                shapes.append((d, u))
                d = u
            out[s] = shapes
            flat += d
        else:
            shapes, strides = camera_kernel_shapes(s, network)
            out[s] = shapes
            h, w = IMAGE_H, IMAGE_W
            for shape, stride in zip(shapes, strides, strict=False):
                h, w = (h - shape[0]) // stride + 1, (w - shape[1]) // stride + 1
            flat += h * w * shapes[-1][-1]
    mw = []
    for u in MIDDLEWARE[network]:
        mw.append((flat, u))
        flat = u
    out["middleware"] = mw
    return out
