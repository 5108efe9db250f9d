"""A speed-aware reward for racing (used by benchmarks/race.py).

DeepRacer reward functions are stateless, so "how fast" is measured as the average speed of the
episode so far: distance along the track (progress % of the track length) over elapsed sim
time (15 steps per second). Paying avg_speed² per step makes the reward of a whole lap grow
with speed (steps × v² ∝ lap length × v), so driving slowly never pays more. Off-track gets
almost nothing, and the episode ends there anyway.
"""


def reward_function(params):
    if params["is_offtrack"] or not params["all_wheels_on_track"]:
        return 1e-3
    seconds = max(params["steps"] - 1.0, 1.0) / 15.0
    distance = max(params["progress"], 0.0) / 100.0 * params["track_length"]
    avg_speed = min(distance / seconds, 4.0)
    centred = 1.0 - 0.5 * min(params["distance_from_center"] / (0.5 * params["track_width"]), 1.0)
    reward = centred * (avg_speed / 4.0) ** 2
    if params["progress"] >= 100.0:
        reward += 10.0 * (15.0 * 7.5 / max(params["steps"], 1.0))  # lap bonus, larger for faster laps
    return float(reward + 1e-3)
