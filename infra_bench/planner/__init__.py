"""The planner: hardware and site profiles, the LLM serving model and its fit, media predictions,
calibration, demand, queueing, sizing and cost."""
