"""An object-avoidance reward (used by benchmarks/race_oa.py and benchmarks/race_h2b.py).

Works unchanged on DeepRacer-on-AWS / DRfC: only documented `params` keys, no state.

* Progress: pays the average speed of the episode so far, squared (as the race template's reward,
  src/drlocal/templates/race/reward_function.py), so a faster way round always pays more.
* Avoidance: when the next object is within 1.5 m ahead, being in the *other* lane (the object's
  `objects_left_of_center` differs from `is_left_of_center`) keeps the full reward; staying in its lane
  scales the reward down the closer the object gets.
* A crash or leaving the track pays almost nothing; the episode ends there anyway in training.
"""


def reward_function(params):
    if params["is_crashed"] or params["is_offtrack"] or not params["all_wheels_on_track"]:
        return 1e-3
    seconds = max(params["steps"] - 1.0, 1.0) / 15.0
    distance = max(params["progress"], 0.0) / 100.0 * params["track_length"]
    avg_speed = min(distance / seconds, 4.0)
    reward = 0.2 + (avg_speed / 4.0) ** 2
    objects = params["objects_location"]
    if objects:
        nxt = params["closest_objects"][1]
        ahead = (params["objects_distance"][nxt] - params["projection_distance"]) % params["track_length"]
        if ahead < 1.5:
            same_lane = params["objects_left_of_center"][nxt] == params["is_left_of_center"]
            if same_lane:
                reward *= max(ahead / 1.5, 0.05) ** 2
            else:
                reward *= 1.0 + 0.5 * (1.0 - ahead / 1.5)  # passing on the other lane
    if params["progress"] >= 100.0:
        reward += 10.0 * (15.0 * 12.0 / max(params["steps"], 1.0))
    return float(reward + 1e-3)
