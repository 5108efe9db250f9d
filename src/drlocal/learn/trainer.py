"""DeepRacer's training loop: iterations of parallel episodes, evaluation, best-model choice (contract §8.3).

One iteration:
1. `num_episodes_between_training` cars each drive one training episode in parallel, with
   round-robin starts (car i of iteration k starts at offset + (k·E + i)·advance), exactly the
   starts one DeepRacer worker would use for those episodes. Every step of every car is one
   batched policy forward pass; the simtrace gets one row per car-step, TrainingMetrics one
   entry per episode.
2. `DR_TRAIN_MIN_EVAL_TRIALS` greedy evaluation episodes of the same weights (never trained on)
   give the checkpoint's score by `DR_TRAIN_BEST_MODEL_METRIC`. DeepRacer repeats them from one
   start; with deterministic physics that would replay one episode, so drlocal spreads their
   starts evenly around the lap.
3. Transitions beyond the per-iteration step cap are dropped, PPO trains once, and checkpoint
   k+1 is written (with `deepracer_checkpoints.json` and `.coach_checkpoint`).

Stops after ceil(term_cond_max_episodes / episodes per iteration) iterations (the rollout
worker's rule), at the time budget, or on Ctrl-C (the last finished iteration is kept).
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from drlocal.config.workdir import Job
from drlocal.config.workers import WorkerPlan, plan_workers
from drlocal.env.vector_env import object_boxes_of
from drlocal.errors import DrlocalError, InvalidActionError, NonFiniteStateError
from drlocal.learn.agent import Actor, as_obs_dict, pick_device
from drlocal.learn.diagnostics import RACER_LOG, RacerDiagnostics, RacerLog, RacerMonitor
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.ppo import PPOConfig, PPOLearner
from drlocal.learn.sac import SACConfig, SACLearner
from drlocal.learn.watch import NoWatch, Watch
from drlocal.learn.workers import Rollout, RolloutWorker, WorkerSpec, acting_weights, cap_transitions, training_env
from drlocal.memory import tame_allocator, trim
from drlocal.sim.episode import LAP_COMPLETE, EpisodeOptions, World
from drlocal.sim.reward import RewardFunctionError, load_reward_function
from drlocal.store.local import CheckpointName, ModelStore, StoreWriteError, atomic_write_json, atomic_write_text
from drlocal.store.logs import SimtraceWriter, TrainingMetrics
from drlocal.store.select import store_of
from drlocal.tracks import Track, load_track

FORMAT = "drlocal-ppo-1"
NO_LAP_MS = 999999  # DeepRacer's laptime for an episode without a lap


def step_cap(network: str, override: int | None) -> int:
    """Per-iteration transition cap: 10000 for SHALLOW, 3000 otherwise (MAX_MEMORY_STEPS overrides)."""
    if override:
        return override
    return 10000 if network == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW" else 3000


def sensor_sizes(job: Job) -> dict[str, int]:
    return job.metadata.input_sizes()


def build_model(job: Job) -> PPOActorCritic:
    md = job.metadata
    n_actions = 2 if md.is_continuous else len(md.action_space)  # type: ignore[arg-type]
    return PPOActorCritic(sensor_sizes(job), md.neural_network, n_actions, md.is_continuous)


@dataclass
class IterationReport:
    """What the progress display shows after each iteration."""

    iteration: int
    iterations_total: int
    episodes: int
    mean_reward: float
    mean_progress: float
    laps: int
    eval_progress: float
    eval_metric: float
    best_metric: float | None
    best_checkpoint: str | None
    env_steps: int
    steps_per_s: float
    elapsed_s: float
    eta_s: float
    time_shares: dict[str, float]
    peak_memory_mb: float
    ratio_dev: float
    lap_time_s: float | None = None  # mean time of the iteration's complete training laps [s]
    learner: dict[str, float] = field(default_factory=dict)  # losses, entropy, KL of the update
    racer: RacerDiagnostics = field(default_factory=RacerDiagnostics)  # σ, clipped share, lap trend, reward check


@dataclass
class TrainerState:
    """Everything needed to resume exactly: saved inside every checkpoint."""

    iteration: int = 0  # iterations completed (= simtrace files written)
    episodes: int = 0  # training episodes completed
    env_steps: int = 0  # training transitions collected
    clock: float = 0.0  # sim time [s]
    best: dict[str, Any] | None = None
    checkpoint: int = 0
    start_ndist: list[float] = field(default_factory=list)
    reverse: list[bool] = field(default_factory=list)
    actor_steps: int = 0
    worker_episodes: list[int] = field(default_factory=list)  # training episodes per worker (simapp counters)
    worker_snapshots: list[dict[str, Any]] = field(default_factory=list)  # several workers: their states


def worker_tracks(plan: WorkerPlan, first: Track) -> list[Track]:
    """Every worker's track (worker 0's is `first`); an unknown one is an error naming its worker file."""
    tracks = {first.name: first}
    for run, source in zip(plan.runs, plan.sources, strict=True):
        if run.world_name not in tracks:
            try:
                tracks[run.world_name] = load_track(run.world_name)
            except DrlocalError as exc:
                raise DrlocalError(f"{source}: DR_WORLD_NAME={run.world_name}: {exc.args[0]}", hint=exc.hint) from None
    return [tracks[r.world_name] for r in plan.runs]


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _refuse_non_finite(weights: Any, name: CheckpointName, iteration: int) -> None:
    """Stop before a checkpoint with NaN/inf weights is written: it would replace a good `last` and every
    later iteration would train on garbage. The previous checkpoint stays the last one."""
    stack = [("", weights)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise NonFiniteStateError(
                f"iteration {iteration}: the network's weights became NaN/inf ({key}); checkpoint {name} was not "
                "written, the previous checkpoint stays the last one.",
                hint="the update diverged: lower the learning rate (hyperparameters.json `lr`) or the scale of the "
                "rewards, then `drlocal train --resume` continues from the last good checkpoint.")


class Trainer:
    """Trains the job's model into its model prefix folder."""

    def __init__(
        self,
        job: Job,
        *,
        minutes: float | None = None,
        resume: bool = False,
        seed: int = 0,
        device: torch.device | None = None,
        on_iteration: Callable[[IterationReport], None] | None = None,
        on_message: Callable[[str], None] | None = None,
        max_iterations: int | None = None,
        wipe: bool = False,
        watch: Watch | None = None,
        workers: int | None = None,
        learners: int = 1,
        address: str | None = None,
    ) -> None:
        self.job = job
        self.minutes = minutes
        # Set from another thread or a signal handler (the CLI's Ctrl-C) to stop at the next iteration boundary,
        # keeping the last finished iteration: the same ending as a KeyboardInterrupt, which it backs up should the
        # interrupt be raised where something swallows it.
        self.stop_requested = False
        self.seed = seed
        self.device = device or pick_device()
        self.on_iteration = on_iteration or (lambda r: None)
        self.say = on_message or (lambda m: None)
        self.watch: Watch = watch or NoWatch()  # progress bar, live viewer (drlocal.view): one call per step
        hp = job.hyperparameters
        # the workers (DR_WORKERS / --workers, multi-config), checked before anything is written
        self.plan: WorkerPlan = plan_workers(job, workers)
        for w in self.plan.warnings:
            self.say(f"[yellow]warning:[/] {w}")
        self.learners = int(learners)
        if self.learners < 1:
            raise DrlocalError(f"--learners {learners}: at least one learner is needed.",
                               hint="use --learners 1 or more.")
        self.track = load_track(job.run.world_name)
        self.worker_tracks = worker_tracks(self.plan, self.track)  # multi-config: checked before anything starts
        self.ray_where: str | None = None
        if self.plan.count > 1 or self.learners > 1:  # Ray only now: one worker and learner never import it
            from drlocal.learn.ray_workers import connect

            self.ray_where = connect(address, self.plan.count * (self.plan.count > 1) + self.learners * (
                self.learners > 1), self.say)
        elif address:
            self.say(f"[yellow]warning:[/] --address {address} is not used: one worker and one learner train in "
                     "this process (give --workers or --learners to use the cluster)")
        self.episodes_per_iter = hp.num_episodes_between_training
        self.iterations_total = (max_iterations if max_iterations is not None
                                 else math.ceil(hp.term_cond_max_episodes / self.episodes_per_iter))
        self.bucket = store_of(job)  # local disk, DRfC's MinIO or S3: files go to the working copy, then up
        self.bucket.mirror(self.say)
        self.prefix = job.run.model_prefix
        self.store = ModelStore(self.bucket.local_root / self.prefix)
        self._tf_note = False
        torch.manual_seed(seed)
        random.seed(seed)  # the global streams a reward function may draw from (it runs in this process)
        np.random.seed(seed)
        self.algorithm = job.metadata.training_algorithm
        self.racer = RacerMonitor(job.metadata)  # the racer's diagnostics (drlocal.learn.diagnostics)
        self.sac: SACLearner | None = None
        if self.algorithm == "sac":
            sac_config = SACConfig(lr=hp.lr, batch_size=hp.batch_size, discount_factor=hp.discount_factor,
                                   alpha=hp.sac_alpha)
            self.sac = SACLearner(sensor_sizes(job), job.metadata.neural_network, sac_config, self.device, seed=seed)
            self.model = self.sac.policy
        else:
            self.model = build_model(job).to(self.device)
            ppo_config = PPOConfig(lr=hp.lr, num_epochs=hp.num_epochs, batch_size=hp.batch_size,
                                   beta_entropy=hp.beta_entropy, discount_factor=hp.discount_factor,
                                   loss_type=hp.loss_type)
            self.learner = PPOLearner(self.model, ppo_config, self.device)
        self.sensors = sorted(job.metadata.sensor)
        self.actor = Actor(
            self.model, self.sensors, self.device, exploration=hp.exploration_type,
            e_greedy_value=hp.e_greedy_value, epsilon_steps=hp.epsilon_steps, seed=seed,
        )
        self.cap = step_cap(job.metadata.neural_network, job.run.max_steps_per_iteration)
        run = job.run
        reward_fn = load_reward_function(job.reward_path)
        # one worker drives its cars here; with several, this env only serves the evaluation episodes
        self.env = training_env(self.track, job.metadata, reward_fn, run,
                                self.episodes_per_iter if self.plan.count == 1 else 1, seed)
        self.env.reward_fn.on_warning = lambda m: self.say(f"[yellow]warning:[/] {m}")  # a slow reward, once
        self.local_worker = (RolloutWorker(self.env, self.actor, self.sensors, watch=self.watch)
                             if self.plan.count == 1 else None)
        self.pool: Any = None  # drlocal.learn.ray_workers.RayWorkerPool with several workers
        self.group: Any = None  # drlocal.learn.distributed.LearnerGroup with several learners
        self.state = TrainerState(worker_episodes=[0] * self.plan.count)
        metrics_prefix = getattr(run, "metrics_prefix", None) or f"{self.prefix}/metrics"
        metrics_dir = self.bucket.local_root / metrics_prefix
        # worker 0 writes TrainingMetrics.json, worker k > 0 TrainingMetrics_k.json (the simapp's names)
        self.worker_metrics = [TrainingMetrics(metrics_dir / ("TrainingMetrics.json" if w == 0 else
                                                              f"TrainingMetrics_{w}.json"), run.best_model_metric)
                               for w in range(self.plan.count)]
        self.metrics = self.worker_metrics[0]
        self.generator = torch.Generator().manual_seed(seed)
        self.timers = {"sim": 0.0, "inference": 0.0, "learn": 0.0}
        tame_allocator()  # flat memory over hours: see drlocal/memory.py
        if resume:
            self._resume()
        else:
            self._start_fresh(wipe)
        try:
            self._start_remote()
        except BaseException:
            self._close_remote()
            raise

    # ----- set-up -----

    def _write_side_files(self) -> None:
        job, s = self.job, self.store
        atomic_write_json(s.model_dir / "model_metadata.json", job.metadata.to_json_dict())
        atomic_write_json(s.root / "ip" / "hyperparameters.json",
                          job.hyperparameters.effective_json(job.metadata.training_algorithm), indent=2)
        atomic_write_text(s.root / "reward_function.py", job.reward_path.read_text(encoding="utf-8"))
        from drlocal.export.droa import droa_training_params, training_params_yaml

        yaml_name = getattr(job.run, "training_params_file", None) or "training_params.yaml"
        # every key DRfC's prepare-config.py writes and the simapp / DeepRacer-on-AWS require, quoted as DRfC does
        yamls = {yaml_name: (job, self.track)}
        if self.plan.count > 1 and job.run.train_multi_config:  # DRfC: training_params_<N>.yaml per worker N
            stem = yaml_name.split(".")[0]
            yamls |= {f"{stem}_{i + 1}.yaml": (run, self.worker_tracks[i]) for i, run in enumerate(self.plan.runs)}
        for name, (values, track) in yamls.items():
            params = droa_training_params(values, track=track)
            params["NUM_WORKERS"] = str(self.plan.count)
            atomic_write_text(s.root / name, training_params_yaml(params))
        self.bucket.publish([s.model_dir / "model_metadata.json", s.root / "ip" / "hyperparameters.json",
                             s.root / "reward_function.py", *(s.root / name for name in yamls)])

    def _start_fresh(self, wipe: bool) -> None:
        existing = self.bucket.prefix_objects(self.prefix)
        if existing and wipe:
            n = self.bucket.wipe(self.prefix)
            self.say(f"wiped {self.bucket.url(self.prefix)} ({n} objects), as DRfC's dr-start-training -w does")
        elif existing:
            kind = "drlocal" if any(k.endswith(".ckpt.pt") for k in existing) else "DRfC/SageMaker"
            raise DrlocalError(
                f"{self.bucket.url(self.prefix)} exists ({len(existing)} objects, a {kind} model): DRfC refuses to "
                "train into an existing prefix, and so does drlocal.",
                hint="--resume continues a drlocal run, `drlocal increment` trains a new prefix on top of it, "
                "--wipe deletes it first (DRfC's -w), or set another DR_LOCAL_S3_MODEL_PREFIX.",
            )
        run = self.job.run
        if run.pretrained:
            pre = ModelStore(self.bucket.pull(run.pretrained_prefix, ["model/*"]))
            state = pre.load_checkpoint(run.pretrained_checkpoint, map_location=self.device)
            self._load_weights(state)
            self.say(f"starting from {run.pretrained_prefix}/{state['name']} (pretrained)")
        self._write_side_files()
        self._save_checkpoint(eval_metric=None)  # checkpoint 0, as DeepRacer's trainer does
        self.racer_log = RacerLog(self.metrics.path.parent / RACER_LOG)

    def _resume(self) -> None:
        self.bucket.pull(self.prefix, ["model/*", "ip/*"])
        self.bucket.pull(str(self.metrics.path.parent.relative_to(self.bucket.local_root)), ["TrainingMetrics.json"])
        state = self.store.load_checkpoint("last", map_location=self.device)
        if state.get("format") != FORMAT or not state.get("trainer"):
            raise DrlocalError(
                f"{self.store.model_dir}: checkpoint {state['name']} was not written by drlocal's trainer "
                f"({state.get('source', 'unknown format')}), so there is no training state to resume.",
                hint="continue it as DRfC does: `drlocal increment` (a new prefix pretrained from it).")
        self._load_weights(state)
        opt = self.store.load_aux("optimizer", map_location=self.device)
        if opt and opt.get("checkpoint") == state["name"]:
            if self.sac is None:
                self.learner.optimizer.load_state_dict(opt["state"])
            else:
                self.sac.opt_pi.load_state_dict(opt["state"]["pi"])
                self.sac.opt_q.load_state_dict(opt["state"]["q"])
                self.sac.opt_v.load_state_dict(opt["state"]["v"])
        self.state = TrainerState(**state["trainer"])
        self._continue_workers()
        w = self.env.world
        if self.state.start_ndist and self.plan.count == 1:
            w.start_ndist[:] = self.state.start_ndist  # the starts of the last finished iteration
            w.reverse[:] = self.state.reverse
            w.needs_advance[:] = self.state.iteration > 0  # so the next iteration advances from them
            w.reset()
            w.episode[:] = self.state.episodes // max(self.episodes_per_iter, 1)
        self.actor.steps = self.state.actor_steps
        # the prefix's copy (which evaluate reads) becomes the reward trained from now on, fixed after a failure, say
        atomic_write_text(self.store.root / "reward_function.py", self.job.reward_path.read_text(encoding="utf-8"))
        self.bucket.publish([self.store.root / "reward_function.py"])
        if state.get("rng"):  # checkpoints of older drlocal versions have none: the streams restart from the seed
            self._set_rng_state(state["rng"])
        # drop metrics written after the checkpoint (the interrupted iteration)
        for metrics, done in zip(self.worker_metrics, self.state.worker_episodes, strict=True):
            old = TrainingMetrics.load(metrics.path, self.job.run.best_model_metric)
            metrics.entries = [e for e in old.entries if e["episode"] <= done]
            metrics.save()
        self.say(f"resuming {self.store.root.name} at iteration {self.state.iteration} from {state['name']}")
        self.bucket.pull(str(self.metrics.path.parent.relative_to(self.bucket.local_root)), [RACER_LOG])
        self.racer_log = RacerLog(self.metrics.path.parent / RACER_LOG, keep_up_to=self.state.iteration)
        self.racer.resume(self.racer_log.entries)

    def _continue_workers(self) -> None:
        """Per-worker counters and states of a resumed run (older checkpoints and another worker count too)."""
        st, n = self.state, self.plan.count
        if len(st.worker_episodes) != n:
            if n == 1:
                st.worker_episodes = [st.episodes]
            else:  # the worker count changed (or a 1-worker run goes on with several): counters as if always n
                st.worker_episodes = [st.iteration * share for share in self.plan.shares]
        if st.worker_snapshots and len(st.worker_snapshots) != n:
            self.say(f"[yellow]note:[/] the run had {len(st.worker_snapshots)} workers and goes on with {n}: the "
                     "workers start from fresh start positions")
            st.worker_snapshots = []

    def _start_remote(self) -> None:
        """The Ray actors: rollout workers (several workers) and the learner group (several learners)."""
        if self.plan.count > 1:
            from drlocal.learn.ray_workers import RayWorkerPool
            from drlocal.sim.reward import timeout_from_env

            hp = self.job.hyperparameters
            shared = {"metadata": self.job.metadata.to_json_dict(),
                      "reward_source": self.job.reward_path.read_text(encoding="utf-8"),
                      "reward_name": str(self.job.reward_path),
                      "exploration": {"exploration_type": hp.exploration_type, "e_greedy_value": hp.e_greedy_value,
                                      "epsilon_steps": hp.epsilon_steps},
                      "algorithm": self.algorithm, "seed": self.seed, "reward_timeout_s": timeout_from_env()}
            specs = [WorkerSpec(index=w, episodes=share, track=self.worker_tracks[w], run=run, **shared)
                     for w, (run, share) in enumerate(zip(self.plan.runs, self.plan.shares, strict=True))]
            self.pool = RayWorkerPool(specs, self.say, self.state.worker_snapshots or None)
            self.say(f"{self.plan.count} rollout workers on {self.ray_where} ({len(set(self.pool.nodes))} node(s) "
                     "used): " + ", ".join(f"{w}: {r.world_name} ({n} ep.)" for w, (r, n) in
                                          enumerate(zip(self.plan.runs, self.plan.shares, strict=True))))
        if self.learners > 1:
            from drlocal.learn.distributed import LearnerGroup

            md = self.job.metadata
            if self.sac is not None:
                sac = self.sac
                self.group = LearnerGroup(
                    self.learners, {"sensors": sensor_sizes(self.job), "network": md.neural_network}, sac.config,
                    weights=sac.state_dict(), kind="sac",
                    optimizer_state={"pi": sac.opt_pi.state_dict(), "q": sac.opt_q.state_dict(),
                                     "v": sac.opt_v.state_dict()})
            else:
                n_actions = 2 if md.is_continuous else len(md.action_space)  # type: ignore[arg-type]
                self.group = LearnerGroup.for_ppo(
                    self.learners, self.model, {"sensors": sensor_sizes(self.job), "network": md.neural_network,
                                                "num_actions": n_actions, "continuous": md.is_continuous},
                    self.learner.config, self.learner.optimizer.state_dict())
            self.say(f"{self.learners} data-parallel learners (torch.distributed) on {self.ray_where}")

    def _close_remote(self) -> None:
        for part in (self.pool, self.group):
            if part is not None:
                part.close()
        self.pool = self.group = None

    def _rng_state(self) -> dict[str, Any]:
        """Every random stream training draws from, saved in each checkpoint so that a resumed run continues them
        (`train --iterations 4` = `train --iterations 2` + `train --resume --iterations 4`)."""
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),  # SAC's action sampling, network initialisation
            "minibatches": self.generator.get_state(),  # PPO's minibatch order
            "actor_torch": self.actor.generator.get_state(),  # sampled actions (categorical / Gaussian)
            "actor_numpy": self.actor.rng.bit_generator.state,  # e-greedy exploration
            "sensor_noise": self.env._rng.bit_generator.state,  # LIDAR noise
            "objects": self.env.world.objects.rng.bit_generator.state,  # obstacle placement, bot lane changes
            "python": random.getstate(),  # reward functions
            "numpy_global": np.random.get_state(),
        }
        if self.sac is not None:
            rng["replay"] = self.sac.rng.bit_generator.state  # replay minibatches
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return rng

    def _set_rng_state(self, rng: dict[str, Any]) -> None:
        """Continue the streams saved by `_rng_state` (torch states back on the CPU: map_location moved them)."""
        torch.set_rng_state(rng["torch"].cpu())
        self.generator.set_state(rng["minibatches"].cpu())
        self.actor.generator.set_state(rng["actor_torch"].cpu())
        self.actor.rng.bit_generator.state = rng["actor_numpy"]
        self.env._rng.bit_generator.state = rng["sensor_noise"]
        if "objects" in rng:
            self.env.world.objects.rng.bit_generator.state = rng["objects"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy_global"])
        if self.sac is not None and "replay" in rng:
            self.sac.rng.bit_generator.state = rng["replay"]
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state_all([t.cpu() for t in rng["cuda"]])

    def _load_weights(self, state: dict[str, Any]) -> None:
        if self.sac is not None:
            self.sac.load_state_dict(state["model"])
        else:
            self.model.load_state_dict(state["model"])

    def _save_checkpoint(self, eval_metric: float | None) -> CheckpointName:
        name = CheckpointName(self.state.checkpoint, self.state.env_steps)
        w = self.env.world
        self.state.start_ndist = w.start_ndist.tolist()
        self.state.reverse = w.reverse.tolist()
        self.state.actor_steps = self.actor.steps
        if self.pool is not None:
            self.state.worker_snapshots = list(self.pool.snapshots)
        best = CheckpointName.parse(self.state.best["name"]) if self.state.best else None
        payload = {
            "format": FORMAT,
            "algorithm": self.algorithm,
            "model": self.sac.state_dict() if self.sac is not None else self.model.state_dict(),
            "optimizer": None,  # kept once in model/.optimizer.pt (3x the weights; only resume needs it)
            "trainer": self.state.__dict__.copy(),
            "rng": self._rng_state(),
            "model_metadata": self.job.metadata.to_json_dict(),
        }
        _refuse_non_finite(payload["model"], name, self.state.iteration)
        drfc_files = self._write_drfc_files(name, payload)  # before the pointers name this checkpoint
        _, deleted = self.store.save_checkpoint(name, payload, best)
        if self.group is not None and self.group.optimizer_state is not None:
            opt = self.group.optimizer_state  # the learners' Adam state (identical on every learner)
        elif self.sac is not None:
            opt = {"pi": self.sac.opt_pi.state_dict(), "q": self.sac.opt_q.state_dict(),
                   "v": self.sac.opt_v.state_dict()}
        else:
            opt = self.learner.optimizer.state_dict()
        self.store.save_aux("optimizer", {"checkpoint": str(name), "state": opt})
        last = {"name": str(name), "avg_eval_metric": eval_metric if eval_metric is not None else 0.0,
                "time_stamp": round(self.state.clock, 3)}
        self.store.write_checkpoints_json(self.state.best, last)
        model = self.store.model_dir
        # upload order: the checkpoint's files, then the pointers; pruned checkpoints go last
        self.bucket.publish([self.store.checkpoint_path(name), *drfc_files, model / ".optimizer.pt"],
                            [model / "deepracer_checkpoints.json", model / ".coach_checkpoint"],
                            sorted(deleted))
        return name

    def _write_drfc_files(self, name: CheckpointName, payload: dict[str, Any]) -> list[Any]:
        """With a DRfC store, DRfC's TensorFlow checkpoint and model_<N>.pb beside drlocal's own file."""
        if not self.bucket.is_drfc:
            return []
        try:
            from drlocal.export.drfc import write_drfc_checkpoint
        except ImportError:
            return []
        try:
            return list(write_drfc_checkpoint(self.store.model_dir, name, payload))
        except DrlocalError as exc:  # TensorFlow (the car extra) missing: drlocal's own files still work
            if not self._tf_note:
                self._tf_note = True
                self.say(f"[yellow]warning:[/] not writing DRfC's TensorFlow checkpoints ({exc}); DRfC tools "
                         "(dr-upload-model, log analysis) need them, drlocal does not.")
            return []

    # ----- one iteration -----

    def _collect(self) -> dict[str, Any]:
        """Every worker plays its share of the iteration's training episodes; the driver writes their simtraces
        and metrics; returns the transitions (worker after worker, each episode-ordered, step cap applied)."""
        n = self.episodes_per_iter
        k = self.state.iteration
        self.watch.status(activity="collecting episodes", iteration_running=k + 1, iteration=k,
                          iterations_total=self.iterations_total, episodes=self.state.episodes)
        firsts = list(self.state.worker_episodes)
        if self.local_worker is not None:
            rollouts = [self.local_worker.collect(None, firsts[0], self.state.clock)]
            for key, v in rollouts[0].timers.items():
                self.timers[key] += v
        else:
            t0 = time.perf_counter()
            rollouts = self.pool.collect(acting_weights(self.model), firsts, self.state.clock)
            self.timers["sim"] += time.perf_counter() - t0  # the workers' wall time (simulation and inference)
        paths = []
        for r in rollouts:
            self._write_worker_logs(r, k, firsts[r.worker])
            paths.append(self.worker_metrics[r.worker].path)
        self.bucket.publish([*self._simtrace_paths(k), *paths])
        finals = [f for r in rollouts for f in r.finals]
        self.state.clock = max(f["end"] for f in finals)
        self.state.episodes += n
        self.state.worker_episodes = [firsts[r.worker] + len(r.finals) for r in rollouts]
        data = cap_transitions(rollouts, self.cap)
        data["finals"] = finals
        return data

    def _simtrace_path(self, worker: int, iteration: int) -> Any:
        """`training-simtrace/K-iteration.csv`, under `<worker>/` when there are several (DRfC's layout,
        which deepracer-utils reads as a multi-worker run)."""
        base = self.store.root / str(worker) if self.plan.count > 1 else self.store.root
        return base / "training-simtrace" / f"{iteration}-iteration.csv"

    def _simtrace_paths(self, iteration: int) -> list[Any]:
        return [self._simtrace_path(w, iteration) for w in range(self.plan.count)]

    def _write_worker_logs(self, r: Rollout, iteration: int, first_episode: int) -> None:
        """A worker's simtrace of this iteration (episode after episode, as one DeepRacer worker writes it) and
        its TrainingMetrics entries (its own episode counter and trial numbers, as the simapp's worker)."""
        writer = SimtraceWriter(self._simtrace_path(r.worker, iteration))
        for episode_rows in r.rows:
            writer.write_lines(episode_rows)
        writer.close()
        r.rows = []  # written: not kept until the update
        metrics = self.worker_metrics[r.worker]
        start_ms = round(self.state.clock * 1000)
        for i, f in enumerate(r.finals):
            metrics.add(episode=first_episode + i + 1, trial=i + 1, phase="training", reward=f["reward"],
                        progress=f["progress"], status=f["status"], start_ms=start_ms, end_ms=round(f["end"] * 1000))
        metrics.save()

    def evaluate_greedy(self, trials: int) -> list[dict[str, Any]]:
        """`trials` greedy episodes with starts spread around the lap (not trained on)."""
        if trials <= 0:
            return []
        run = self.job.run
        opts = EpisodeOptions(training=False, reverse_direction=run.reverse_direction)
        starts = (run.start_position_offset + np.arange(trials) / trials) % 1.0
        race = run.race_options(training=False, seed=self.state.iteration)
        w = World(self.track, trials, self.env.reward_fn, opts, start_ndist=starts, race=race,
                  stereo=self.job.metadata.camera == "STEREO_CAMERAS")
        builder = self.env.obs_builder
        self.watch.status(activity="evaluating")
        self.watch.begin(w, phase="Evaluating")
        active = np.ones(trials, dtype=bool)
        total = np.zeros(trials)
        out: list[dict[str, Any]] = [{} for _ in range(trials)]
        start_clock = self.state.clock
        steps = 0
        while active.any() and steps < 20000:
            obs = as_obs_dict(builder.observe(w.car.x, w.car.y, w.car.yaw, boxes=object_boxes_of(w)), self.sensors)
            acts = self.actor.act(obs, deterministic=True)
            speed, steer = self.env.actions.commands(acts)
            res = w.step(speed, steer, active=active)
            self.watch.step(w, res, speed, steer, active)
            total += res.reward
            for i in np.flatnonzero(active & res.done):
                lap = res.status[i] == LAP_COMPLETE
                out[i] = {"status": str(res.status[i]), "progress": float(res.progress[i]), "reward": float(total[i]),
                          "laptime_ms": (res.steps[i] - 1) * w.dt * 1000.0 if lap else NO_LAP_MS,
                          "end": start_clock + res.sim_time[i] + w.dt}
            active &= ~res.done
            steps += 1
        self.watch.end()
        for i in np.flatnonzero(active):  # safety net, never expected
            out[i] = {"status": "in_progress", "progress": float(w.prev_progress[i]), "reward": float(total[i]),
                      "laptime_ms": NO_LAP_MS, "end": start_clock + w.sim_time[i]}
        for e in out:
            # the simapp's evaluation entries (worker 0's) carry the iteration's last training trial (its trial
            # counter counts training episodes only, s3_metrics.py), which deepracer-utils reads as the iteration's size
            self.metrics.add(episode=self.state.worker_episodes[0], trial=self.plan.shares[0], phase="evaluation",
                             reward=e["reward"], progress=e["progress"], status=e["status"],
                             start_ms=round(start_clock * 1000), end_ms=round(e["end"] * 1000))
        self.metrics.save()
        self.bucket.publish([self.metrics.path])
        self.state.clock = max(e["end"] for e in out)
        return out

    def _metric(self, evals: list[dict[str, Any]]) -> float:
        key = {"progress": "progress", "reward": "reward", "laptime": "laptime_ms"}[self.job.run.best_model_metric]
        return float(np.mean([e[key] for e in evals])) if evals else 0.0

    def _is_better(self, value: float) -> bool:
        if self.state.best is None:
            return True
        best = self.state.best["avg_eval_metric"]
        return value <= best if self.job.run.best_model_metric == "laptime" else value >= best

    # ----- the loop -----

    def train(self) -> TrainerState:
        t_start = time.perf_counter()
        kept, running = self.state.checkpoint, self.state.iteration + 1
        self._first_iteration = self.state.iteration
        base_steps = self.state.env_steps
        try:
            while self.state.iteration < self.iterations_total:
                if self.stop_requested:
                    raise KeyboardInterrupt
                if self.minutes is not None and (time.perf_counter() - t_start) / 60.0 >= self.minutes:
                    self.say(f"time budget of {self.minutes:g} min reached")
                    break
                self._check_store()
                kept, running = self.state.checkpoint, self.state.iteration + 1
                self._one_iteration(t_start, base_steps)
        except (RewardFunctionError, NonFiniteStateError, InvalidActionError, StoreWriteError) as exc:
            # stopped inside an iteration: nothing of it is checkpointed, the last finished one stays as it was
            exc.args = (f"{exc.args[0]}\n  training stopped in iteration {running}; checkpoint {kept} (the last "
                        f"finished iteration) is kept in {self.store.model_dir}.",)
            exc.hint = f"{exc.hint} Then `drlocal train --resume` continues from checkpoint {kept}." if exc.hint \
                else f"`drlocal train --resume` continues from checkpoint {kept}."
            self._finish_uploads()
            raise
        except KeyboardInterrupt:
            self.say(f"interrupted: keeping checkpoint {self.state.checkpoint} (iteration {self.state.iteration})")
            self._finish_uploads()
            return self.state
        finally:
            self._close_remote()
        if self.state.iteration >= self.iterations_total:
            atomic_write_text(self.store.model_dir / ".finished", "")
            self.bucket.publish([self.store.model_dir / ".finished"])
        self._finish_uploads()
        return self.state

    def _check_store(self) -> None:
        """Stop between iterations when the remote store has been gone for too long (local copy kept)."""
        mirror = self.bucket.mirror()
        if mirror is not None and mirror.failed is not None:
            raise DrlocalError(
                f"stopped after iteration {self.state.iteration}: {mirror.failed}. Checkpoint {self.state.checkpoint} "
                f"and everything else are kept in {self.store.root}; {mirror.pending} file(s) wait for upload.",
                hint="when the store answers again, `drlocal train --resume` uploads them and continues.")

    def _finish_uploads(self) -> None:
        if self.bucket.remote is not None:
            mirror = self.bucket.mirror()
            if mirror is not None and mirror.pending:
                self.say(f"uploading {mirror.pending} file(s) to {self.bucket.remote.url} …")
            self.bucket.finish()

    def _one_iteration(self, t_start: float, base_steps: int) -> None:
        data = self._collect()
        evals = self.evaluate_greedy(self.job.run.min_eval_trials)
        metric = self._metric(evals)
        evaluated = CheckpointName(self.state.checkpoint, self.state.env_steps)
        if evals and self._is_better(metric):
            self.state.best = {"name": str(evaluated), "avg_eval_metric": metric,
                               "time_stamp": round(self.state.clock, 3)}
        t0 = time.perf_counter()
        ratio_dev = 0.0
        self.watch.status(activity="updating the policy")
        if self.sac is not None:
            nxt = {k: np.concatenate([v[1:], v[-1:]]) for k, v in data["obs"].items()}  # s' within each episode
            steps = int(data["rewards"].shape[0])
            if self.group is not None:  # K learners, each with the same replay: the same steps, weights come back
                batch = {"obs": data["obs"], "actions": data["actions"], "rewards": data["rewards"], "next": nxt,
                         "ends": data["ends"]}
                losses, weights = self.group.update_sac(batch, steps, self.sac.rng)
                self.sac.load_state_dict(weights)
                learner = dict(losses)
            else:
                self.sac.replay.add(data["obs"], data["actions"], data["rewards"], nxt, data["ends"])
                learner = dict(self.sac.update(steps))
        else:
            if self.group is not None:  # K data-parallel learners: the same step, the weights come back
                stats, weights = self.group.update(data, self.generator)
                self.model.load_state_dict(weights)
            else:
                stats = self.learner.update(data["obs"], data["actions"], data["rewards"], data["ends"],
                                            self.generator)
            ratio_dev = stats.first_epoch_ratio_dev
            learner = {"policy_loss": stats.policy_loss, "value_loss": stats.value_loss, "entropy": stats.entropy,
                       "kl": stats.approx_kl}
        self.timers["learn"] += time.perf_counter() - t0
        self.state.env_steps += int(data["rewards"].shape[0])
        self.state.iteration += 1
        self.state.checkpoint += 1
        self._save_checkpoint(eval_metric=metric)
        finals = data["finals"]
        log_std = getattr(self.model, "log_std", None) if self.sac is None else None
        racer = self.racer.update(self.state.iteration, data["actions"], finals, self.env.world.dt,
                                  log_std.detach().cpu().numpy() if log_std is not None else None)
        laps = [f["steps"] * self.env.world.dt for f in finals if f["status"] == LAP_COMPLETE]  # as TrainingMetrics
        lap_time = float(np.mean(laps)) if laps else None
        self.bucket.publish([self.racer_log.append(self.state.iteration, lap_time, racer)])
        del data  # the iteration's transitions: freed before the trim, not kept into the next collection
        trim()
        elapsed = time.perf_counter() - t_start
        done_iters = self.state.iteration
        per_iter = elapsed / max(done_iters - self._first_iteration, 1)
        remaining = self.iterations_total - done_iters
        eta = per_iter * remaining
        if self.minutes is not None:
            eta = min(eta, max(self.minutes * 60.0 - elapsed, 0.0))
        total_t = sum(self.timers.values()) or 1.0
        shares = {k: v / total_t for k, v in self.timers.items()}
        self.watch.status(activity="collecting episodes", iteration=done_iters, iterations_total=self.iterations_total,
                          episodes=self.state.episodes, checkpoint=self.state.checkpoint,
                          best_checkpoint=self.state.best["name"] if self.state.best else None,
                          steps_per_s=round((self.state.env_steps - base_steps) / max(elapsed, 1e-9), 1),
                          shares={k: round(v, 3) for k, v in shares.items()}, elapsed_s=round(elapsed, 1))
        self.on_iteration(IterationReport(
            iteration=done_iters, iterations_total=self.iterations_total, episodes=self.state.episodes,
            mean_reward=float(np.mean([f["reward"] for f in finals])),
            mean_progress=float(np.mean([f["progress"] for f in finals])),
            laps=sum(f["status"] == LAP_COMPLETE for f in finals),
            eval_progress=float(np.mean([e["progress"] for e in evals])) if evals else float("nan"),
            eval_metric=metric,
            best_metric=self.state.best["avg_eval_metric"] if self.state.best else None,
            best_checkpoint=self.state.best["name"] if self.state.best else None,
            env_steps=self.state.env_steps, steps_per_s=(self.state.env_steps - base_steps) / max(elapsed, 1e-9),
            elapsed_s=elapsed, eta_s=eta, time_shares=shares,
            peak_memory_mb=peak_memory_mb(), ratio_dev=ratio_dev,
            lap_time_s=lap_time, learner=learner, racer=racer,
        ))
