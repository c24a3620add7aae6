"""Sweeps: grids over config keys and seeds, run by a local process pool or on a Ray cluster."""

from droplab.sweeps.backends import BACKENDS, check_options, point_status, run_point, run_sweep
from droplab.sweeps.grid import Point, Sweep, make_sweep, parse_axes, read_manifest, write_manifest

__all__ = [
    "Point", "Sweep", "parse_axes", "make_sweep", "write_manifest", "read_manifest",
    "run_sweep", "run_point", "point_status", "check_options", "BACKENDS",
]
