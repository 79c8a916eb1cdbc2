"""The three stories of the design as seeded, runnable experiments."""
