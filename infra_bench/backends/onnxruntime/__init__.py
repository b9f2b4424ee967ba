"""ONNX Runtime: export once (cached), run on any execution provider, parity-checked against torch."""
