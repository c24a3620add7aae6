"""Suite-wide settings.

The tests use small models, for which one intra-op thread is as fast as two on an idle machine
and far faster on a shared one (two threads on two busy cores thrash: 30–100× slower, measured
here). Results do not depend on it: every comparison is within one process or against files
written with the same thread count.
"""

import torch

torch.set_num_threads(1)
