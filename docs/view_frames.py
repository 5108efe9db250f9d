"""Draw the README's camera frames: a pure-pursuit car among three bot cars on reInvent2019_track, one frame of
each DRfC camera (kvs_stream with the training overlay and its extra band, main_camera, sub_camera, camera).

    .venv/bin/python docs/view_frames.py   # writes docs/img/camera-*.png
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from drlocal.sim.episode import EpisodeOptions, World
from drlocal.sim.pursuit import pure_pursuit_steering
from drlocal.sim.race import RaceOptions
from drlocal.tracks import load_track
from drlocal.view.cameras import FollowCam
from drlocal.view.frames import BodyColors, Composer, Telemetry, scene_of
from drlocal.view.scene import OverlayData

OUT = Path(__file__).resolve().parent / "img"


def main() -> None:
    track = load_track("reInvent2019_track")
    race = RaceOptions(race_type="HEAD_TO_BOT", number_of_bot_cars=3, bot_car_speed=0.4)
    world = World(track, 1, None, EpisodeOptions(training=False), start_ndist=0.0, race=race)
    world.reset()
    tel, cam = Telemetry(1, world.dt), FollowCam()
    cam.reset(float(world.car.x[0]), float(world.car.y[0]), float(world.car.yaw[0]))
    res, pose, speed, steer = None, None, np.full(1, 1.6), np.zeros(1)
    for _ in range(70):
        steer = pure_pursuit_steering(track.lines(False), world.car)
        res = world.step(speed, steer)
        tel.update(res, np.ones(1, bool))
        pose = cam.update(float(world.car.x[0]), float(world.car.y[0]), float(world.car.yaw[0]), world.dt)
    colors = BodyColors()
    scene = scene_of(world, 0, colors)
    data = tel.overlay(0, world, res, phase="Training", steer=float(steer[0]), throttle=float(speed[0]),
                       base=OverlayData(name="FastCar", race_type="HEAD_TO_BOT", extra=True))
    comp = Composer(track, world="reInvent2019_track")
    OUT.mkdir(exist_ok=True)
    for camera, img in comp.views(("kvs_stream", "main_camera", "sub_camera", "camera"), scene, data,
                                  follow=pose).items():
        Image.fromarray(img).save(OUT / f"camera-{camera}.png", optimize=True)
    eval_frame = comp.render("kvs_stream", scene, replace(data, extra=False, laps=3, lap=1), follow=pose,
                             evaluation=True)
    Image.fromarray(eval_frame).save(OUT / "camera-kvs_stream-evaluation.png", optimize=True)
    print(f"wrote {sorted(p.name for p in OUT.glob('camera-*.png'))}")


if __name__ == "__main__":
    main()
