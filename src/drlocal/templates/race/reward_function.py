"""drlocal race template: follow a racing line at the speed the tyres allow.

DeepRacer calls reward_function(params) 15 times per simulated second; PPO maximises the discounted
(γ = 0.99) sum over an episode. This reward says, at every step, two things a fast lap needs and the car
can act on at once:

* where to drive: close to a racing line, computed once per track from params["waypoints"] and
  params["track_width"]: the centre line moved sideways within the road so that its squared curvature is
  least (the classic minimum-curvature line: out wide before a corner, the apex on the inside, out wide
  after it). On reInvent2019_track it uses the whole width, up to 0.45 m off the centre line;
* how fast: the speed a car with the DeepRacer's grip (μ = 0.5) and acceleration can hold at that point
  of the line.

Each step pays in proportion to the commanded speed squared, i.e. per metre in proportion to the speed,
so a lap's total is about its length times how well it kept line and pace times how fast it went: a
slower lap is never paid more (drlocal train checks this every iteration), and a lap 10 % faster is paid
about 10 % more, so speed is worth some risk. The lap bonus at the finish is larger for fewer steps.
Only math and numpy are used; both are available to reward functions on the DeepRacer console,
DeepRacer-on-AWS and DRfC. The line needs a closed loop track.
"""

import math

import numpy as np

MARGIN = 0.08  # [m] the line keeps the car's centre this far inside the track's border (about the car's half-track)
SMOOTHING = 0.1  # weight of the whole second differences beside the curvature (keeps the points evenly spaced)
GRIP = 0.5 * 9.81  # [m/s²] lateral grip of the DeepRacer tyres (μ = 0.5 in Gazebo)
GRIP_SHARE = 0.9  # target speeds use 90 % of it: a margin for the 0.5 s steering lag
ACCEL, BRAKE = 3.3, 4.9  # [m/s²] the car's acceleration and braking limits
TOP_SPEED = 4.0  # [m/s] DeepRacer's fastest action
SPACING = 0.1  # [m] between racing-line points (at most 250 points)
QP_SPACING, QP_POINTS = 0.25, 100  # [m], [-]: the coarser points the line is placed on
LINE_TOLERANCE = 0.25  # the line term falls to 0 this share of the track width away from the line
PACE_TOLERANCE = 1.5  # [m/s] the pace term falls to 0 this far from the target speed

_LINES = {}  # racing line per track, computed on the first call (a reward function may keep a cache)


def _box_qp(H, g, limit):
    """Minimise a·H·a/2 + g·a with |a| <= limit (active set; H positive definite)."""
    a = np.clip(np.linalg.solve(H, -g), -limit, limit)
    for _ in range(40):
        grad = H @ a + g
        fixed = ((a <= -limit + 1e-9) & (grad > 0)) | ((a >= limit - 1e-9) & (grad < 0))
        free = ~fixed
        new = a.copy()
        if free.any():
            rhs = -(g[free] + H[np.ix_(free, fixed)] @ a[fixed])
            new[free] = np.linalg.solve(H[np.ix_(free, free)], rhs)
        new = np.clip(new, -limit, limit)
        if np.allclose(new, a, atol=1e-6):
            break
        a = new
    return a


def _normals(P):
    """Unit left normals (n, 2) of a closed polyline (n, 2), from its central differences."""
    tangent = np.roll(P, -1, 0) - np.roll(P, 1, 0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return np.column_stack([-tangent[:, 1], tangent[:, 0]])


def racing_line(waypoints, track_width):
    """Racing line points (n, 2) [m], target speeds (n,) [m/s] and the line's ideal lap time [s]."""
    key = (len(waypoints), round(waypoints[0][0], 4), round(waypoints[0][1], 4), round(track_width, 4))
    if key in _LINES:
        return _LINES[key]
    centre = np.asarray(waypoints, dtype=float)[:, :2]
    keep = np.r_[True, np.linalg.norm(np.diff(centre, axis=0), axis=1) > 1e-6]
    centre = centre[keep]
    if np.allclose(centre[0], centre[-1]):
        centre = centre[:-1]
    # Evenly spaced points along the centre line (the track's waypoints are not): the line's points every
    # SPACING metres, and a coarser set (every QP_SPACING metres, at most QP_POINTS) to place the line on.
    closed = np.vstack([centre, centre[:1]])
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))]
    n = int(min(max(s[-1] / SPACING, 60), 250))
    m = int(min(max(s[-1] / QP_SPACING, 30), QP_POINTS))
    u = np.linspace(0.0, s[-1], m, endpoint=False)
    P = np.column_stack([np.interp(u, s, closed[:, 0]), np.interp(u, s, closed[:, 1])])
    # Each coarse point is moved sideways by a (|a| <= half the width - MARGIN), chosen to minimise the line's
    # squared curvature: the sideways (normal) part of its second differences, plus a little (SMOOTHING) of the
    # whole second difference so that points do not bunch up at the apexes. A small quadratic program
    # (m <= 100 unknowns), so the first call stays fast even on a busy machine.
    normal = _normals(P)
    limit = max(0.5 * track_width - MARGIN, 0.0)
    eye = np.eye(m)
    second = np.roll(eye, -1, 1) - 2 * eye + np.roll(eye, 1, 1)
    B = second * (normal @ normal.T)  # normal part of the second differences, per unit of offset
    b = normal[:, 0] * (second @ P[:, 0]) + normal[:, 1] * (second @ P[:, 1])
    M = second.T @ second
    H = normal[:, 0, None] * M * normal[None, :, 0] + normal[:, 1, None] * M * normal[None, :, 1]
    g = normal[:, 0] * (M @ P[:, 0]) + normal[:, 1] * (M @ P[:, 1])
    a = _box_qp(B.T @ B + SMOOTHING * H + 1e-9 * eye, B.T @ b + SMOOTHING * g, limit)
    # Onto the fine points: the offsets by trigonometric (Fourier) interpolation, smooth round the loop, and
    # the centre line and its normals at the fine points.
    spectrum = np.fft.rfft(a)
    fine = np.zeros(n // 2 + 1, dtype=complex)
    k = min(len(spectrum), len(fine))
    fine[:k] = spectrum[:k]
    a = np.clip(np.fft.irfft(fine, n) * (n / m), -limit, limit)
    u = np.linspace(0.0, s[-1], n, endpoint=False)
    P = np.column_stack([np.interp(u, s, closed[:, 0]), np.interp(u, s, closed[:, 1])])
    normal = _normals(P)
    line = P + a[:, None] * normal
    # Curvature over ±3 points (±0.3 m), then the fastest speed profile of a point mass on the line:
    # the grip limit v²κ <= share·μg, then accelerate forwards and brake backwards within the car's limits.
    d1 = (np.roll(line, -3, 0) - np.roll(line, 3, 0)) / 2
    d2 = np.roll(line, -3, 0) - 2 * line + np.roll(line, 3, 0)
    cross = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
    kappa = cross / np.maximum(np.linalg.norm(d1, axis=1), 1e-9) ** 3
    ds = np.linalg.norm(np.roll(line, -1, 0) - line, axis=1)
    v = np.minimum(TOP_SPEED, np.sqrt(GRIP_SHARE * GRIP / np.maximum(kappa, 1e-6)))
    for _ in range(2):  # twice round, so the profile also closes over the start line
        for i in range(n):
            j = (i + 1) % n
            v[j] = min(v[j], math.sqrt(v[i] ** 2 + 2 * ACCEL * ds[i]))
        for i in range(n - 1, -1, -1):
            j = (i + 1) % n
            v[i] = min(v[i], math.sqrt(v[j] ** 2 + 2 * BRAKE * ds[i]))
    seg = np.roll(line, -1, 0) - line
    _LINES[key] = (line, seg, np.maximum(np.sum(seg * seg, axis=1), 1e-12), v, float(np.sum(ds / v)))
    return _LINES[key]


def reward_function(params):
    # Off the track the episode ends anyway; give (almost) nothing so leaving is never worth it.
    if params["is_offtrack"]:
        return 1e-3
    width = params["track_width"]
    line, seg, seg2, target, _ = racing_line(params["waypoints"], width)
    # Distance from the car (params x, y: 0.14 m ahead of its centre) to the nearest segment of the line.
    px, py = params["x"] - line[:, 0], params["y"] - line[:, 1]
    t = np.clip((px * seg[:, 0] + py * seg[:, 1]) / seg2, 0.0, 1.0)
    dist2 = (px - t * seg[:, 0]) ** 2 + (py - t * seg[:, 1]) ** 2
    i = int(np.argmin(dist2))
    # 1 on the line, 0 at a quarter of the track width (27 cm on reInvent2019) or more away from it.
    on_line = max(0.0, 1.0 - math.sqrt(dist2[i]) / (LINE_TOLERANCE * width))
    # 1 at the target speed of that point of the line, 0 at 1.5 m/s faster or slower.
    pace = max(0.0, 1.0 - abs(params["speed"] - target[i]) / PACE_TOLERANCE)
    # The mean of the two terms (0..1) times the commanded speed squared (as a share of 4 m/s): per metre that
    # is in proportion to the speed, so the faster of two equally clean laps earns more.
    reward = 0.5 * (on_line + pace) * (params["speed"] / TOP_SPEED) ** 2
    # The lap bonus, once, at the finish: 20 x (112.5 steps / steps taken), i.e. 20 for a 7.5 s lap.
    if params["progress"] >= 100.0:
        reward += 20.0 * (15.0 * 7.5 / max(params["steps"], 1.0))
    # Never exactly zero: PPO's advantages then still see a difference between bad and worse.
    return float(reward + 1e-3)
