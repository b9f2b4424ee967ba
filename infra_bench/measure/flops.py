"""FLOPs of one call, from torch's FLOP counter: matrix multiplications, convolutions and attention;
elementwise work is not counted. The call runs under no_grad, not inference_mode: weight-norm
parametrizations fail under the counter in the latter. On meta-device modules it costs no memory
and no compute. Scaled dot-product attention on a CPU runs a kernel torch's counter has no formula
for (it would count 0), so it is given flash attention's, which it computes."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def _count_cpu_attention() -> None:
    """Register the CPU flash-attention kernel with the counter's scaled-dot-product-attention formula."""
    import torch
    from torch.utils.flop_counter import (
        flop_registry,
        register_flop_formula,
        sdpa_flop_count,
    )

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None or op in flop_registry:
        return

    @register_flop_formula(op)
    def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)


def counted(fn: Callable[[], object]) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    _count_cpu_attention()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def attention_share(fn: Callable[[], object]) -> float:
    """The share of one call's counted FLOPs in attention (scaled dot-product attention kernels and the
    batched matmuls of attention written out); the rest is linear layers and convolutions."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    _count_cpu_attention()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    ops = counter.get_flop_counts()["Global"]
    total = sum(ops.values())
    attention = sum(v for op, v in ops.items() if "attention" in str(op) or "bmm" in str(op))
    return attention / total if total else 0.0
