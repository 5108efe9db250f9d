"""The DeepRacer networks, layer for layer (contract §7), in PyTorch.

Every convolution and dense layer of an embedder or middleware is followed by ReLU (no batch
norm, no dropout: the SCHEME builder ignores those entries); the camera embedders' ReLUs work
in place (the same numbers, one allocation less per layer: faster, benchmarks/learner.py).
Convolutions use valid padding and Glorot-uniform init with zero bias. Feature maps are
flattened in TensorFlow's channels-last
order (H, W, C), and "dense" layers listed after convolutions act on the channel axis of the
4-D map (a 1×1 convolution), so weights map one-to-one onto the TF graph for export.

Camera inputs arrive as uint8 (N, 120, 160, C) and are divided by 255 inside the network.
Several sensors: one embedder per input, concatenated in sorted sensor-name order.
Hand-written because the architecture is DeepRacer's (RL-Coach SCHEME presets).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CAMERAS = ("FRONT_FACING_CAMERA", "LEFT_CAMERA", "observation")
STEREO = "STEREO_CAMERAS"
LIDARS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")

# (out_channels, kernel, stride) per conv layer, then channel-axis dense sizes
_CONV_SCHEMES: dict[tuple[str, str], tuple[list[tuple[int, int, int]], list[int]]] = {
    ("camera", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"): ([(32, 8, 4), (64, 4, 2), (64, 3, 1)], []),
    ("camera", "DEEP_CONVOLUTIONAL_NETWORK"): ([(32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1)], [64]),
    ("camera", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"): ([(32, 8, 4), (32, 4, 2), (64, 4, 2), (64, 3, 1)], [512, 512]),
    ("stereo", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"): ([(32, 8, 4), (64, 4, 2), (64, 3, 1)], []),
    ("stereo", "DEEP_CONVOLUTIONAL_NETWORK"): (
        [(32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1)], []),
    ("stereo", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"): (
        [(32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1)], []),
}
MIDDLEWARE = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": [512],
    "DEEP_CONVOLUTIONAL_NETWORK": [512],
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": [256, 128],
}
LIDAR_DENSE = [256, 256]
IMAGE_H, IMAGE_W = 120, 160


def glorot_(layer: nn.Module) -> nn.Module:
    """TF's default kernel init (Glorot uniform) and zero bias."""
    nn.init.xavier_uniform_(layer.weight)  # type: ignore[arg-type]
    nn.init.zeros_(layer.bias)  # type: ignore[arg-type]
    return layer


def normalized_columns_(layer: nn.Linear, std: float) -> nn.Linear:
    """RL-Coach's normalized-columns init: Gaussian kernel, each output unit's weights scaled to norm `std`."""
    with torch.no_grad():
        w = torch.randn_like(layer.weight)  # torch (out, in) = TF (in, out) transposed
        w *= std / w.pow(2).sum(dim=1, keepdim=True).sqrt()
        layer.weight.copy_(w)
        layer.bias.zero_()
    return layer


class ImageEmbedder(nn.Module):
    """Convolutions (+ channel-axis dense layers) over a (N, 120, 160, C) uint8 image; output flattened HWC."""

    def __init__(self, channels: int, convs: Sequence[tuple[int, int, int]], dense: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        h, w = IMAGE_H, IMAGE_W
        for out, k, s in convs:
            layers += [glorot_(nn.Conv2d(c, out, k, s)), nn.ReLU(inplace=True)]
            c = out
            h, w = (h - k) // s + 1, (w - k) // s + 1
        for out in dense:  # TF Dense on the channel axis == 1x1 convolution
            layers += [glorot_(nn.Conv2d(c, out, 1, 1)), nn.ReLU(inplace=True)]
            c = out
        self.body = nn.Sequential(*layers)
        self.out_shape = (h, w, c)
        self.out_dim = h * w * c

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dtype = self.body[0].weight.dtype  # float32 (float64 when the model is .double(), as in exactness tests)
        x = image.permute(0, 3, 1, 2).to(dtype) / 255.0  # NHWC uint8 -> NCHW [0, 1]
        x = self.body(x)
        return x.permute(0, 2, 3, 1).flatten(1)  # flatten in TF's HWC order


class VectorEmbedder(nn.Module):
    """LIDAR embedder: Dense 256 → Dense 256, ReLU."""

    def __init__(self, size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = size
        for out in LIDAR_DENSE:
            layers += [glorot_(nn.Linear(d, out)), nn.ReLU()]
            d = out
        self.body = nn.Sequential(*layers)
        self.out_dim = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.to(self.body[0].weight.dtype))


def make_embedder(sensor: str, network: str, input_size: int = 64) -> nn.Module:
    """The embedder of one sensor for `neural_network` (the v1 `observation` sensor always uses SHALLOW)."""
    if sensor in LIDARS:
        return VectorEmbedder(input_size)
    if sensor == "observation":
        network = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    kind = "stereo" if sensor == STEREO else "camera"
    convs, dense = _CONV_SCHEMES[(kind, network)]
    return ImageEmbedder(2 if kind == "stereo" else 1, convs, dense)


class Tower(nn.Module):
    """Input embedders (sorted by sensor name) + middleware: one complete DeepRacer network body."""

    def __init__(self, sensors: dict[str, int], network: str, middleware: bool = True) -> None:
        """`sensors` maps sensor name to its vector size (ignored for cameras)."""
        super().__init__()
        self.sensor_names = sorted(sensors)
        self.embedders = nn.ModuleDict({s: make_embedder(s, network, sensors[s]) for s in self.sensor_names})
        d = sum(e.out_dim for e in self.embedders.values())  # type: ignore[misc]
        layers: list[nn.Module] = []
        if middleware:
            for out in MIDDLEWARE[network]:
                layers += [glorot_(nn.Linear(d, out)), nn.ReLU()]
                d = out
        self.middleware = nn.Sequential(*layers)
        self.out_dim = d

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = [self.embedders[s](obs[s]) for s in self.sensor_names]
        x = feats[0] if len(feats) == 1 else torch.cat(feats, dim=1)
        return self.middleware(x)


class PPOActorCritic(nn.Module):
    """Clipped-PPO networks: two independent towers (contract §7.1).

    network_0 = value tower + V head (Dense 1, normalized-columns std 1.0);
    network_1 = policy tower + PPO head: Dense(num_actions) → softmax (discrete), or
    Dense(2) mean (normalized-columns std 0.01) with a state-independent log-std (continuous).
    """

    def __init__(self, sensors: dict[str, int], network: str, num_actions: int, continuous: bool) -> None:
        super().__init__()
        self.continuous = continuous
        self.value_tower = Tower(sensors, network)
        self.value_head = normalized_columns_(nn.Linear(self.value_tower.out_dim, 1), 1.0)
        self.policy_tower = Tower(sensors, network)
        if continuous:
            self.policy_head = normalized_columns_(nn.Linear(self.policy_tower.out_dim, 2), 0.01)
            self.log_std = nn.Parameter(torch.zeros(2))
        else:
            self.policy_head = glorot_(nn.Linear(self.policy_tower.out_dim, num_actions))  # type: ignore[assignment]

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """V(s), shape (N,)."""
        return self.value_head(self.value_tower(obs)).squeeze(-1)

    def policy_output(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The graph's `policy` tensor: action probabilities (N, A) or the mean (N, 2)."""
        out = self.policy_head(self.policy_tower(obs))
        return out if self.continuous else torch.softmax(out, dim=-1)

    def distribution(self, obs: dict[str, torch.Tensor]) -> torch.distributions.Distribution:
        """Categorical over max(p, 1e-8), or a diagonal Gaussian with σ = exp(clip(log σ, −20, 3))."""
        out = self.policy_output(obs)
        if self.continuous:
            std = self.log_std.clamp(-20.0, 3.0).exp().expand_as(out)
            return torch.distributions.Independent(torch.distributions.Normal(out, std), 1)
        return torch.distributions.Categorical(probs=out.clamp_min(1e-8))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
