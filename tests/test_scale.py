"""Scale-out on Ray (real Ray, real processes): several rollout workers, multi-config, data-parallel learners.

One two-node Ray cluster on this machine serves the module: `ray start --head` plus a second `ray start
--address` node, each with 2 CPUs, started and stopped here, with `--node-ip-address=127.0.0.1` and token
authentication (Ray 2.60 still registers the nodes under the machine's own interface address, so its ports
are not loopback-only; the token keeps other clients out). Tests in this process join it by its GCS
address; the CLI test joins through Ray Client (`--address ray://…`) as a user on another machine would.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.ppo import PPOConfig, PPOLearner
from drlocal.learn.trainer import Trainer
from drlocal.tracks import load_track

# Ray's token authentication, as a real cluster runs it: every node and client holds the cluster's token. Ray reads
# these when it is imported, so they are set before (for this process, the nodes and the CLI runs it starts).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray", reason="the ray extra (pip install 'drlocal[ray]') is not installed")

RAY = Path(sys.executable).parent / "ray"
SHALLOW = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray(*args: str, env: dict[str, str]) -> None:
    r = subprocess.run([str(RAY), *args], capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, f"ray {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"


def _node_ports() -> list[str]:
    """Ports of one node's agents given explicitly: two nodes on one machine must not share the defaults."""
    return [f"--node-manager-port={_free_port()}", f"--object-manager-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}"]


#: The running cluster's Ray temp folder (its logs), for failure messages.
_CLUSTER_TEMP: list[str] = []


def _client_server_logs() -> str:
    """The head's Ray Client server logs (why a client's server did not start), for a failure message."""
    logs = [p for t in _CLUSTER_TEMP for p in sorted(Path(t).glob("session_*/logs/ray_client_server*.err"))]
    return "".join(f"\n--- {p.name}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


@pytest.fixture(scope="module")
def cluster():
    """A two-node Ray cluster on 127.0.0.1; yields (GCS address, Ray Client address)."""
    if not RAY.exists():
        pytest.skip("the `ray` command is missing")
    temp = tempfile.mkdtemp(prefix="rt")  # short: Ray's socket paths must stay under the OS limit
    _CLUSTER_TEMP[:] = [temp]
    env = dict(os.environ)  # with the token set at import (above)
    port, client_port = _free_port(), _free_port()
    gcs = f"127.0.0.1:{port}"
    try:
        _ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", f"--ray-client-server-port={client_port}", f"--temp-dir={temp}",
             "--disable-usage-stats", *_node_ports(), env=env)
        _ray("start", f"--address={gcs}", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats",
             *_node_ports(), env=env)
        ray.init(address=gcs, logging_level="WARNING")
        deadline = time.monotonic() + 60
        while sum(1 for n in ray.nodes() if n["Alive"]) < 2:
            assert time.monotonic() < deadline, "the second Ray node did not join"
            time.sleep(0.5)
        yield gcs, f"ray://127.0.0.1:{client_port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(temp, ignore_errors=True)


def _folder(root: Path, *, episodes: int, workers: int = 1, multi: bool = False, iterations: int = 3) -> Path:
    init_workdir(root)
    hp_path = root / "custom_files" / "hyperparameters.json"
    h = json.loads(hp_path.read_text())
    h.update({"num_episodes_between_training": episodes, "num_epochs": 1,
              "term_cond_max_episodes": iterations * episodes})
    hp_path.write_text(json.dumps(h))
    with (root / "run.env").open("a") as f:
        f.write("DR_TRAIN_MIN_EVAL_TRIALS=1\n")
        if multi:
            f.write("DR_TRAIN_MULTI_CONFIG=True\n")
    with (root / "system.env").open("a") as f:
        f.write(f"DR_WORKERS={workers}\n")
    return root


def _episodes(n_eps: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Whole episodes of uneven length; the first half pays much more than the second, so a learner that
    standardised advantages over its own shard only would step differently from one process."""
    lengths = rng.integers(18, 30, n_eps)
    n = int(lengths.sum())
    ends = np.zeros(n, dtype=bool)
    ends[np.cumsum(lengths) - 1] = True
    rewards = rng.random(n)
    rewards[: n // 2] += 5.0
    obs = {"FRONT_FACING_CAMERA": rng.integers(0, 256, (n, 120, 160, 1), dtype=np.uint8)}
    return obs, rng.integers(0, 5, n), rewards, ends


def test_two_learners_step_exactly_as_one_process(cluster) -> None:
    """DD-PPO equivalence: one PPO update by 2 learners on the same iteration = the one-process update."""
    from drlocal.learn.distributed import LearnerGroup, shard_bounds

    rng = np.random.default_rng(7)
    obs, actions, rewards, ends = _episodes(6, rng)
    torch.manual_seed(0)
    # float64: in float32 rounding alone (even 1 vs 2 threads in one process) moves a few weights by ~lr after some
    # Adam steps (a ReLU input within rounding of 0 flips); in float64 the two updates agree far below 1e-5
    model = PPOActorCritic({"FRONT_FACING_CAMERA": 0}, SHALLOW, 5, False).double()
    config = PPOConfig(num_epochs=2, batch_size=64, lr=3e-4)
    single = copy.deepcopy(model)
    g1 = torch.Generator().manual_seed(3)
    s1 = PPOLearner(single, config, torch.device("cpu")).update(obs, actions, rewards, ends, g1)
    group = LearnerGroup.for_ppo(2, model, {"sensors": {"FRONT_FACING_CAMERA": 0}, "network": SHALLOW, "num_actions": 5,
                                    "continuous": False}, config)
    try:
        g2 = torch.Generator().manual_seed(3)
        data = {"obs": obs, "actions": actions, "rewards": rewards, "ends": ends}
        s2, weights = group.update(data, g2)
        other = ray.get(group.actors[1].weights.remote())
    finally:
        group.close()
    (lo0, hi0), (lo1, hi1) = shard_bounds(ends, 2)
    assert lo0 == 0 and hi1 == len(rewards) and hi0 == lo1 and ends[hi0 - 1]  # whole episodes, no row lost
    assert 0.3 < hi0 / len(rewards) < 0.7
    ref = single.state_dict()
    diff = max(float((ref[k] - weights[k]).abs().max()) for k in ref)
    assert diff < 1e-5, diff  # weights equal the one-process update
    assert all(torch.equal(weights[k], other[k]) for k in weights)  # identical on every learner
    assert torch.equal(g1.get_state(), g2.get_state())  # the minibatch stream advanced as in one process
    assert s2.minibatches == s1.minibatches == 2 * (len(rewards) // 64) and s2.samples == s1.samples
    assert s2.policy_loss == pytest.approx(s1.policy_loss, abs=1e-5)
    assert s2.value_loss == pytest.approx(s1.value_loss, rel=1e-5)
    assert s2.entropy == pytest.approx(s1.entropy, rel=1e-6)


def test_two_sac_learners_step_as_one_process(cluster) -> None:
    """SAC data-parallel: each learner holds the same replay, draws the same minibatches and noise, takes its half
    of every minibatch; the summed gradients give the one-process steps."""
    from drlocal.learn.distributed import LearnerGroup
    from drlocal.learn.sac import SACConfig, SACLearner

    sizes = {"LIDAR": 64}
    config = SACConfig(batch_size=32, replay_size=1000)
    torch.manual_seed(0)
    single = SACLearner(sizes, SHALLOW, config, torch.device("cpu"), seed=5)
    rng = np.random.default_rng(1)
    n = 150
    obs = {"LIDAR": rng.random((n, 64), dtype=np.float32)}
    nxt = {"LIDAR": rng.random((n, 64), dtype=np.float32)}
    acts = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    rewards, ends = rng.random(n), rng.random(n) < 0.05
    group = LearnerGroup(2, {"sensors": sizes, "network": SHALLOW}, config, weights=single.state_dict(), kind="sac")
    try:
        torch.manual_seed(11)
        single.replay.add(obs, acts, rewards, nxt, ends)
        losses1 = single.update(10)
        torch.manual_seed(11)
        replay_rng = np.random.default_rng(5)
        losses2, weights = group.update_sac({"obs": obs, "actions": acts, "rewards": rewards, "next": nxt,
                                             "ends": ends}, 10, replay_rng)
    finally:
        group.close()
    ref = single.state_dict()
    diff = max(float((a - b).abs().max()) for part in ref for a, b in zip(ref[part].values(),
                                                                           weights[part].values(), strict=True))
    assert diff < 1e-5, diff
    assert replay_rng.bit_generator.state == single.rng.bit_generator.state
    assert losses2["q_loss"] == pytest.approx(losses1["q_loss"], rel=1e-4)


def test_workers_and_learners_survive_a_killed_worker(cluster, tmp_path: Path) -> None:
    """--workers 2 --learners 2 on the cluster; worker 1 is killed mid-iteration 2: its episodes are played again
    on a new actor, training goes on, every checkpoint and log is there."""
    root = _folder(tmp_path, episodes=4, workers=2, iterations=3)
    job = load_job(root, environ={})
    reports = []
    trainer = Trainer(job, seed=2, learners=2, on_iteration=reports.append)
    pool = trainer.pool
    assert pool is not None and trainer.group is not None and len(pool.actors) == 2
    calls = []

    def kill_worker_1(actors: list) -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            ray.kill(actors[1])

    pool.on_dispatch = kill_worker_1
    state = trainer.train()
    assert pool.replaced == 1
    assert state.iteration == 3 and state.episodes == 12 and state.worker_episodes == [6, 6]
    prefix = root / "data" / "bucket" / "rl-deepracer-sagemaker"
    names = sorted(int(p.name.split("_")[0]) for p in (prefix / "model").glob("*_Step-*.ckpt.pt"))
    assert names == [0, 1, 2, 3]  # no gap
    for w in (0, 1):
        traces = sorted(p.name for p in (prefix / str(w) / "training-simtrace").glob("*.csv"))
        assert traces == ["0-iteration.csv", "1-iteration.csv", "2-iteration.csv"]
        episodes = sorted({int(line.split(",")[0]) for k in range(3) for line in
                           (prefix / str(w) / "training-simtrace" / f"{k}-iteration.csv").read_text().splitlines()[1:]})
        assert episodes == list(range(6))  # the worker's own counter, nothing missing or doubled
    m1 = json.loads((prefix / "metrics" / "TrainingMetrics_1.json").read_text())["metrics"]
    assert [(e["episode"], e["trial"]) for e in m1] == [(i + 1, i % 2 + 1) for i in range(6)]
    # the learners' weights come back to the workers: π_old of every update is the policy that acted
    assert all(r.ratio_dev < 1e-4 for r in reports), [r.ratio_dev for r in reports]


@pytest.mark.parametrize("fault", ["raises", "hangs"])
def test_a_reward_error_inside_a_worker_stops_cleanly(cluster, tmp_path: Path, fault: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A reward function that fails or hangs on a remote worker: its own message (file; the time limit, which the
    trainer sends to the workers and which works there: Ray runs an actor's calls on its main thread), training
    stops in that iteration, the last finished checkpoint stays, `--resume` can continue."""
    from drlocal.sim.reward import RewardFunctionError

    monkeypatch.setenv("DRLOCAL_REWARD_TIMEOUT_S", "1")
    root = _folder(tmp_path, episodes=2, workers=2, iterations=3)
    reward = root / "custom_files" / "reward_function.py"
    body = "raise ValueError('broken on purpose')" if fault == "raises" else "while True:\n            pass"
    reward.write_text(f"def reward_function(params):\n    if params['steps'] > 3 and params['x'] > -100:\n"
                      f"        {body}\n    return 1.0\n")
    trainer = Trainer(load_job(root, environ={}), seed=0)
    with pytest.raises(RewardFunctionError) as err:
        trainer.train()
    text = str(err.value)
    assert "reward_function.py" in text
    assert ("broken on purpose" in text) if fault == "raises" else ("1 s" in text or "1.0 s" in text), text
    assert "training stopped in iteration 1; checkpoint 0" in text and "--resume" in (err.value.hint or "")
    assert trainer.pool is None  # the actors are gone
    model = root / "data" / "bucket" / "rl-deepracer-sagemaker" / "model"
    assert sorted(p.name for p in model.glob("*.ckpt.pt")) == ["0_Step-0.ckpt.pt"]


def test_multi_config_on_a_two_node_cluster_through_ray_client(cluster, tmp_path: Path) -> None:
    """`drlocal train --workers 2 --address ray://…` on a DRfC multi-config folder: worker 2 trains on the track of
    its worker-2.env, the workers run on both nodes, deepracer-utils loads the run with episodes of both tracks."""
    _, client = cluster
    root = _folder(tmp_path, episodes=2, workers=2, multi=True, iterations=1)
    (root / "worker-2.env").write_text("DR_WORLD_NAME=reInvent2019_track\nDR_TRAIN_REVERSE_DIRECTION=True\n")
    r = subprocess.run([sys.executable, "-m", "drlocal.cli", "train", "--plain", "--no-report", "--address", client],
                       cwd=root, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "COLUMNS": "200", "RAY_ADDRESS": ""})
    assert r.returncode == 0, r.stdout + r.stderr + _client_server_logs()
    assert "2 node(s) used" in r.stdout and "reinvent_base, reInvent2019_track" in r.stdout
    from deepracer.logs import DeepRacerLog

    prefix = root / "data" / "bucket" / "rl-deepracer-sagemaker"
    log = DeepRacerLog(model_folder=str(prefix))
    log.load()
    df = log.dataframe()
    assert sorted(df["worker"].unique()) == [0, 1] and sorted(df["unique_episode"].unique()) == [0, 1]
    lengths = df.groupby("worker")["track_len"].first()
    assert lengths[0] == pytest.approx(load_track("reinvent_base").length, abs=0.01)
    assert lengths[1] == pytest.approx(load_track("reInvent2019_track").length, abs=0.01)
    training_params = (prefix / "training_params_2.yaml").read_text()
    # DRfC's training_params_<N>.yaml per worker: worker 2 drives its track clockwise (DR_TRAIN_REVERSE_DIRECTION)
    assert "'WORLD_NAME': 'reInvent2019_track'" in training_params and "'NUM_WORKERS': '2'" in training_params
    assert "'TRACK_DIRECTION_CLOCKWISE': !!bool 'true'" in training_params
    assert "'WORLD_NAME': 'reinvent_base'" in (prefix / "training_params_1.yaml").read_text()


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drlocal.cli", "train", "--plain", *args], cwd=root,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "200", "RAY_ADDRESS": ""})


@pytest.mark.parametrize("case", ["too-many-workers", "missing-worker-file", "unknown-track", "unreachable-address",
                                  "not-ray-client"])
def test_bad_scale_configuration_stops_before_any_work(tmp_path: Path, case: str) -> None:
    root = _folder(tmp_path, episodes=3, workers=2, multi=case in ("missing-worker-file", "unknown-track"))
    if case == "too-many-workers":
        r, expect = _cli(root, "--workers", "5"), "5 workers but num_episodes_between_training = 3"
    elif case == "missing-worker-file":
        r, expect = _cli(root), "has no worker-2.env"
    elif case == "unknown-track":
        (root / "worker-2.env").write_text("DR_WORLD_NAME=no_such_track\n")
        r, expect = _cli(root), "worker-2.env: DR_WORLD_NAME=no_such_track: Unknown track"
    elif case == "unreachable-address":
        r, expect = _cli(root, "--address", f"ray://127.0.0.1:{_free_port()}"), "does not answer"
    else:  # a port that accepts and hangs up (another service, a wrong port): Ray Client times out after 30 s
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            stop = threading.Event()

            def hang_up() -> None:
                listener.settimeout(0.2)
                while not stop.is_set():
                    try:
                        listener.accept()[0].close()
                    except OSError:
                        pass

            thread = threading.Thread(target=hang_up, daemon=True)
            thread.start()
            try:
                r = _cli(root, "--address", f"ray://127.0.0.1:{listener.getsockname()[1]}")
            finally:
                stop.set()
                thread.join()
        expect = "accepts connections but no Ray Client server answered there"
    out = r.stdout + r.stderr
    assert r.returncode != 0 and expect in out, out
    assert "Traceback" not in out and out.count("error:") == 1 and "node(s)" not in out  # no Ray was started
    assert not (root / "data" / "bucket" / "rl-deepracer-sagemaker").exists()  # nothing was started or written


def test_one_worker_never_imports_ray(tmp_path: Path) -> None:
    root = _folder(tmp_path, episodes=2)
    code = ("import sys; from drlocal.config.workdir import load_job; from drlocal.learn.trainer import Trainer; "
            f"Trainer(load_job({str(root)!r}, environ={{}}), max_iterations=0).train(); "
            "assert 'ray' not in sys.modules, 'ray imported'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_a_sweep_runs_its_variants_on_both_nodes_and_isolates_failures(cluster, tmp_path: Path) -> None:
    """`drlocal sweep` through Ray Client: two variants at once (2 CPUs each, one per node), a broken reward and
    an unknown track fail alone, the leaderboard ranks the rest; a second run keeps the finished variants."""
    _, client = cluster
    root = _folder(tmp_path, episodes=2, iterations=1)
    with (root / "run.env").open("a") as f:
        f.write("DR_EVAL_MAX_RESETS=2\n")
    (root / "bad.py").write_text("def reward_function(params):\n    raise RuntimeError('boom')\n")
    shutil.copy(root / "custom_files" / "reward_function.py", root / "good.py")
    (root / "sweep.yaml").write_text(
        f"name: s\nbudget: {{iterations: 1}}\naddress: {client}\ncpus_per_variant: 2\nrace: {{laps: 1}}\n"
        "vary:\n  hyperparameters.discount_factor: [0.9, 0.99]\n  reward_function: [good.py, bad.py]\n"
        "  DR_WORLD_NAME: [reinvent_base, no_such_track]\n")
    cmd = [sys.executable, "-m", "drlocal.cli", "sweep", "sweep.yaml"]
    env = {**os.environ, "COLUMNS": "250", "RAY_ADDRESS": ""}
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr + _client_server_logs()
    assert "2 node(s)" in r.stdout and "4 variant(s), 2 at a time, 2 CPU(s) each" in r.stdout
    results = {k: json.loads((root / "experiments" / f"s-{k}" / "sweep-result.json").read_text()) for k in range(1, 9)}
    # grid order: discount, reward, track; the unknown track fails on this machine before anything is sent
    ok = [k for k, res in results.items() if "entry" in res]
    assert ok == [1, 5], results
    assert all("no_such_track" in results[k]["error"] for k in (2, 4, 6, 8))
    assert all("boom" in results[k]["error"] for k in (3, 7))
    assert len({results[k]["node"] for k in ok}) == 2  # one variant per node (2 CPUs each)
    # a variant that failed on a node says which node, as the finished ones do (the Ray node id)
    assert {results[k]["node"] for k in (3, 7)} <= {results[k]["node"] for k in ok}
    rows = (root / "sweeps" / "s" / "leaderboard.csv").read_text().splitlines()
    assert rows[1].startswith("1,s-") and rows[2].startswith("2,s-") and all(x.startswith("-,") for x in rows[3:])
    r2 = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    assert r2.returncode == 0 and "2 variant(s) finished earlier: kept" in r2.stdout, r2.stdout + r2.stderr
