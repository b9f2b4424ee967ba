"""Load tests of OpenAI-compatible serving endpoints (vLLM, SGLang, MindIE, `infra-bench serve`).

The load generator knows nothing about the server under test beyond its HTTP API (as MLPerf's
LoadGen): it times what a client sees (TTFT, ITL, TPOT, E2E; time to first byte for audio and
images), under open-loop (gamma/Poisson arrivals) or closed-loop (fixed concurrency) load, and
writes one record per load point to the same store as `infra-bench run`.
"""
