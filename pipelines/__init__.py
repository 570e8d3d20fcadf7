"""Pipeline stages of the engine and the ``nba`` command line (one module per stage)."""
