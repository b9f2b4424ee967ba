"""Planning inputs and models: hardware and site profiles (more to come: perf model, sizing, cost)."""
