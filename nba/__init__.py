"""Next-Best-Action engine: the core library (pure, typed, no I/O at import time)."""

__version__ = "0.1.0"
