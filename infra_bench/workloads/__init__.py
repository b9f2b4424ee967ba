"""The built-in kinds' workloads (llm, diffusion, tts): models, inputs, one timed request, metrics.
A kind registered in infra_bench/kinds/ may keep its workload in its own folder instead (embedding)."""
