"""The claims of Zhang, Zhou & Xu 2024, Fig. 1 and Definition 2's Remark (``zzx-flat-minima*``), registered
before any run: their quotes, criteria, regimes and the substitute data of the CNN and transformer rows."""

from __future__ import annotations

from droplab.experiments.claims import load_claims

SPECS = load_claims(__package__)


FIG1A = (SPECS["zzx-fig1a-flatter"], SPECS["zzx-fig1a-generalizes"], SPECS["zzx-fig1a-factor-robust"])
FIG1B = (SPECS["zzx-fig1b-flatter"], SPECS["zzx-fig1b-generalizes"])
FIG1C = (SPECS["zzx-fig1c-flatter"], SPECS["zzx-fig1c-generalizes"])
FIG1D = (SPECS["zzx-fig1d-flatter"], SPECS["zzx-fig1d-generalizes"])
