"""droplab: a laboratory for dropout.

Noise layers (:mod:`droplab.nn`), models (:mod:`droplab.models`), data (:mod:`droplab.data`),
training (:mod:`droplab.training`), analyses (:mod:`droplab.ensemble`,
:mod:`droplab.regularization`, :mod:`droplab.dynamics`, :mod:`droplab.landscape`,
:mod:`droplab.noise_structure`), experiments reproducing four papers'
claims (:mod:`droplab.experiments`) and reports (:mod:`droplab.reports`).
"""

__version__ = "0.1.0"
