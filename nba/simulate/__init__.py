"""The synthetic customer world: ground truth kept apart from the tables it emits."""

from nba.simulate.world import SimulationConfig, World, simulate_world, write_world

__all__ = ["SimulationConfig", "World", "simulate_world", "write_world"]
