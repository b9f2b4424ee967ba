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
