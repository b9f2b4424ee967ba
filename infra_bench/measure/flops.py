"""FLOPs of one call, from torch's FLOP counter: matrix multiplications, convolutions and attention;
elementwise work is not counted. The call runs under no_grad, not inference_mode: weight-norm
parametrizations fail under the counter in the latter. On meta-device modules it costs no memory
and no compute."""
from __future__ import annotations

from collections.abc import Callable


def counted(fn: Callable[[], object]) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def attention_share(fn: Callable[[], object]) -> float:
    """The share of one call's counted FLOPs in attention (scaled dot-product attention kernels and the
    batched matmuls of attention written out); the rest is linear layers and convolutions."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    ops = counter.get_flop_counts()["Global"]
    total = sum(ops.values())
    attention = sum(v for op, v in ops.items() if "attention" in str(op) or "bmm" in str(op))
    return attention / total if total else 0.0
