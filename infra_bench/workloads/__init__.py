"""Workloads: build the model and the inputs for each kind (llm; diffusion and tts to come)."""
