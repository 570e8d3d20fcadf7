"""Next-Best-Action engine: the core library (pure, typed, no I/O at import time)."""

import os

# Idle OpenMP workers (LightGBM's) otherwise spin for a while after each predict and take
# a core from the single-threaded numpy work that follows (batch scoring on 2 cores). Read
# when the OpenMP runtime loads, so it is set before anything imports LightGBM; an
# explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
