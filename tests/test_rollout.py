"""The iteration's rollout buffer: episode order, the step cap, copies (no views), reuse without growth."""

from __future__ import annotations

import numpy as np

from drlocal.learn.rollout import RolloutBuffer


def play(buf: RolloutBuffer, lengths: list[int], rng: np.random.Generator) -> dict[int, list[tuple]]:
    """Feed cars stepping together until each has played `lengths[i]` steps; return what each car saw."""
    n = len(lengths)
    seen: dict[int, list[tuple]] = {i: [] for i in range(n)}
    for t in range(max(lengths)):
        frames = rng.integers(0, 256, (n, 3, 4, 1), dtype=np.uint8)
        acts = rng.integers(0, 5, n)
        rew = rng.normal(size=n)
        cars = np.array([i for i in range(n) if t < lengths[i]])
        buf.add(cars, {"CAM": frames}, acts, rew, np.full(n, t + 1.0))
        for i in cars:
            seen[i].append((frames[i].copy(), acts[i], rew[i]))
        frames[:] = 0  # the env reuses/overwrites its batch: stored rows must be copies
    return seen


def test_episode_order_matches_hand_ordering_and_cap() -> None:
    rng = np.random.default_rng(0)
    buf = RolloutBuffer(capacity=4)  # forces growth
    lengths = [5, 2, 7]
    seen = play(buf, lengths, rng)
    out = buf.episode_order(3)
    flat = [x for i in range(3) for x in seen[i]]
    assert out["obs"]["CAM"].shape == (14, 3, 4, 1) and list(out["lengths"]) == lengths
    for row, (frame, act, rew) in enumerate(flat):
        assert np.array_equal(out["obs"]["CAM"][row], frame)
        assert out["actions"][row] == act and out["rewards"][row] == rew
    assert list(np.flatnonzero(out["ends"])) == [4, 6, 13]
    capped = buf.episode_order(3, cap=9)
    assert capped["obs"]["CAM"].shape[0] == 9 and list(np.flatnonzero(capped["ends"])) == [4, 6, 8]


def test_reuse_does_not_grow() -> None:
    rng = np.random.default_rng(1)
    buf = RolloutBuffer(capacity=8)
    sizes = []
    for _ in range(5):
        buf.reset()
        play(buf, [6, 6, 3], rng)
        buf.episode_order(3)
        sizes.append((buf.capacity, buf.nbytes))
    assert sizes[0][0] == 16 and len(set(sizes)) == 1  # grown once to fit 15 rows, then reused as it is
