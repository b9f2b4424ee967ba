"""`infra-bench serve`: an OpenAI-compatible HTTP server over our own runners.

For testing the load generator end to end and for quick local serving: one model call at a
time in one worker thread (FIFO, no batching across requests), so the event loop stays free
to stream. Built-in architectures have random weights; every response says so.
"""
