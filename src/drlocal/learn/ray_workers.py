"""Rollout workers as Ray actors, on this machine or a Ray cluster (`drlocal train --workers N`).

Imported only when a training has more than one worker or learner: one worker never imports Ray.

* `connect()` starts a private Ray on this machine, or joins a cluster (`--address`, else RAY_ADDRESS):
  `ray://host:10001` (Ray Client) or `host:6379` (the head's GCS). An address that does not answer
  stops with one line before anything starts (Ray itself would retry for minutes). A Ray Client
  connection the head refuses while it starts this client's server (a busy head: the server process
  exits before it is up) is tried again, `CLIENT_TRIES` times in all, then stops with one line; a port
  that accepts connections but is not Ray Client stops with one line too.
* `RayWorkerPool` creates one actor per worker from its `WorkerSpec` (the reward function's source,
  the model metadata, the track and the worker's run config travel with it: nothing assumes a
  shared disk), sends each iteration's acting weights once (`ray.put`, shared by all workers of a
  node), and gets back each worker's `Rollout`.
* A worker that dies mid-iteration (its process or node lost, `ray.kill`) is replaced by a new actor
  that restores the snapshot taken before the iteration and plays the same episodes again, so the
  iteration completes with nothing missing. A reward function or simulator error inside a worker is
  not retried: it stops training with its own message, as in one process.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from drlocal.errors import DrlocalError
from drlocal.learn.workers import Rollout, RolloutWorker, WorkerSpec

#: Replacement actors tried for one worker within one iteration before training stops.
MAX_REPLACEMENTS = 3
#: Connections tried through Ray Client (ray://) before giving up; the pause between them doubles from 2 s.
CLIENT_TRIES = 3
#: How long workers may take to start (import torch, compile the simulator's kernels) [s].
START_TIMEOUT_S = 600.0


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """One clear error when nothing listens at `address` (ray://host:port or host:port)."""
    url = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = url.hostname, url.port or (10001 if url.scheme == "ray" else 6379)
    if not host:
        raise DrlocalError(f"--address {address}: no host in it.", hint="give ray://HOST:10001 or HOST:6379.")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise DrlocalError(
            f"the Ray cluster at {address} does not answer ({host}:{port}: {exc.strerror or exc}); nothing was "
            "started.",
            hint="start it with `ray start --head` on the head machine (and `ray start --address HEAD:6379` on "
                 "the others), check the address and firewall, or drop --address / RAY_ADDRESS to train on this "
                 "machine.") from None


def _join(address: str, say: Callable[[str], None]) -> None:
    """`ray.init(address)`; through Ray Client, tried again when the head fails to start this client's server.

    Ray Client's head (its proxier) starts one server process per connecting client; on a loaded head that
    process can exit before it is up, and `ray.init` raises ConnectionAbortedError ("Initialization failure
    from server"). Nothing was started for us then, so joining again is safe."""
    pause = 2.0
    for attempt in range(1, CLIENT_TRIES + 1):
        try:
            ray.init(address=address, logging_level=logging.WARNING, configure_logging=True)
            return
        except ConnectionError as exc:
            if not address.startswith("ray://"):
                raise
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(exc).__name__
            if not isinstance(exc, ConnectionAbortedError):  # no Ray Client answered at all: no point retrying
                raise DrlocalError(
                    f"{address} accepts connections but no Ray Client server answered there ({reason}); nothing "
                    "was started.",
                    hint="give the head's Ray Client port (`ray start --head` opens 10001; "
                         "--ray-client-server-port changes it), or its GCS address HEAD:6379 from a machine of "
                         "the cluster.") from None
            if attempt == CLIENT_TRIES:
                raise DrlocalError(
                    f"the Ray cluster at {address} answers but did not start a Ray Client server for this "
                    f"connection ({CLIENT_TRIES} tries): {reason}",
                    hint="look at ray_client_server_*.err in the head's Ray logs (/tmp/ray/session_latest/logs); "
                         "a busy or out-of-memory head is the usual cause. Or join by the GCS address "
                         "(--address HEAD:6379) from a machine of the cluster.") from None
            say(f"Ray Client: the head did not start a server for this connection ({reason}); trying again "
                f"in {pause:g} s ({attempt}/{CLIENT_TRIES})")
            if ray.is_initialized():
                ray.shutdown()
            time.sleep(pause)
            pause *= 2


def connect(address: str | None, cpus_needed: int, say: Callable[[str], None]) -> str:
    """Start or join Ray; returns a description of where the actors run. Checks the cluster has the CPUs."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        if address:
            _reachable(address)
            _join(address, say)
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, cpus_needed), include_dashboard=False,
                     logging_level=logging.WARNING, configure_logging=True)
    have = float(ray.cluster_resources().get("CPU", 0))
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if have < cpus_needed:
        raise DrlocalError(
            f"the Ray cluster{' at ' + address if address else ''} has {have:g} CPU(s) on {len(nodes)} node(s); "
            f"this training needs {cpus_needed} (one per worker and learner).",
            hint="add nodes (`ray start --address HEAD:6379`), or lower --workers / --learners.")
    where = f"Ray cluster {address}" if address else "a local Ray"
    say(f"{where}: {len(nodes)} node(s), {have:g} CPU(s)")
    return where


class _Worker:
    """The actor body: a RolloutWorker built on the node from its spec."""

    def __init__(self, spec: WorkerSpec, snapshot: dict[str, Any] | None = None) -> None:
        self.worker = RolloutWorker.from_spec(spec)
        if snapshot is not None:
            self.worker.restore(snapshot)

    def collect(self, weights: Any, first_episode: int, start_clock: float,
                snapshot: dict[str, Any] | None = None) -> Rollout:
        return self.worker.collect(weights, first_episode, start_clock, snapshot)

    def snapshot(self) -> dict[str, Any]:
        return self.worker.snapshot()

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()


def _cause(exc: BaseException) -> BaseException:
    """The user-facing error inside a Ray task error (a reward function's, the simulator's), else `exc`."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, DrlocalError) else exc


class RayWorkerPool:
    """N rollout workers as Ray actors (see the module docstring)."""

    def __init__(self, specs: list[WorkerSpec], say: Callable[[str], None],
                 snapshots: list[dict[str, Any]] | None = None) -> None:
        self.specs = specs
        self.say = say
        # SPREAD: workers go to different nodes first (each simulates and infers on its own CPU)
        self._cls = ray.remote(num_cpus=1, max_restarts=0, scheduling_strategy="SPREAD")(_Worker)
        self.actors = [self._cls.remote(s, snapshots[i] if snapshots else None) for i, s in enumerate(specs)]
        self.replaced = 0  # actors replaced after a failure, over the whole run
        self.on_dispatch: Callable[[list[Any]], None] | None = None  # called once an iteration's tasks are out
        self.sent_bytes = 0  # weights sent in the last iteration (one object shared by every worker of a node)
        self.received_bytes = 0  # transitions received in the last iteration
        try:
            self.snapshots = ray.get([a.snapshot.remote() for a in self.actors], timeout=START_TIMEOUT_S)
            self.nodes = ray.get([a.node.remote() for a in self.actors], timeout=60)
        except (RayTaskError, RayActorError) as exc:
            self.close()
            cause = _cause(exc)
            if cause is not exc:
                raise cause from None
            raise DrlocalError(f"a rollout worker did not start: {exc}",
                               hint="every Ray node needs drlocal installed (the same version).") from None
        except GetTimeoutError:
            self.close()
            raise DrlocalError(f"the rollout workers did not start within {START_TIMEOUT_S:.0f} s.",
                               hint="check `ray status`: the cluster may lack free CPUs.") from None

    def _replace(self, w: int) -> Any:
        self.replaced += 1
        self.say(f"[yellow]worker {w} was lost; replaying its episodes of this iteration on a new actor[/]")
        try:
            ray.kill(self.actors[w])
        except Exception:
            pass
        self.actors[w] = self._cls.remote(self.specs[w], None)
        return self.actors[w]

    def collect(self, weights: dict[str, Any], first_episodes: list[int], start_clock: float) -> list[Rollout]:
        """One iteration on every worker; a lost worker's share is collected again on a new actor."""
        ref = ray.put(weights)
        self.sent_bytes = sum(int(v.numel() * v.element_size()) for v in weights.values())
        before = list(self.snapshots)
        pending = {a.collect.remote(ref, first_episodes[w], start_clock): (w, 0) for w, a in enumerate(self.actors)}
        if self.on_dispatch is not None:
            self.on_dispatch(list(self.actors))
        out: dict[int, Rollout] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            w, tries = pending.pop(done[0])
            try:
                out[w] = ray.get(done[0])
            except RayActorError:
                if tries >= MAX_REPLACEMENTS:
                    raise DrlocalError(f"rollout worker {w} was lost {tries + 1} times in one iteration.",
                                       hint="check the Ray nodes (`ray status`, their memory).") from None
                actor = self._replace(w)
                pending[actor.collect.remote(ref, first_episodes[w], start_clock, before[w])] = (w, tries + 1)
            except RayTaskError as exc:
                raise _cause(exc) from None
        self.snapshots = [out[w].snapshot for w in range(len(self.actors))]
        self.received_bytes = sum(r.nbytes for r in out.values())
        return [out[w] for w in range(len(self.actors))]

    def close(self) -> None:
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:
                pass
        self.actors = []

