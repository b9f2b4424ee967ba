"""Embedding and reranker models as torch modules on any probed device."""
from __future__ import annotations

import numpy as np
import torch

from ...backends.base import Built
from ...devices.base import DeviceProbe
from ...devices.torch_probe import DTYPES
from . import workload as ew
from .spec import EmbeddingSpec


class TorchEmbeddingExecutor:
    """One forward per batch; a request ends when the vectors (or scores) are on the host."""

    def __init__(self, model: ew.EmbeddingModel, device: torch.device):
        self.model, self.device = model, device

    def prepare(self, spec: EmbeddingSpec, resolved: ew.ResolvedEmbedding, cell: dict) -> tuple:
        ids = ew.token_ids(resolved, spec, cell).to(self.device)
        return ids, torch.ones_like(ids)

    def run(self, inputs: tuple, now) -> ew.EmbeddingTiming:
        ids, mask = inputs
        start = now()
        self.model(ids, mask).cpu()
        end = now()
        return ew.EmbeddingTiming(start, end, ids.shape[0], ids.shape[1])

    def embed(self, ids: np.ndarray, attention_mask: np.ndarray | None = None,
              token_type_ids: np.ndarray | None = None) -> np.ndarray:
        """Vectors [B, H] (or reranker scores [B]) as float32 for int64 ids [B, L]; all tokens
        attended unless a mask is given; token types (a BERT-style pair's 0s then 1s) when given."""
        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(self.device)
        t = tensor(ids)
        mask = torch.ones_like(t) if attention_mask is None else tensor(attention_mask)
        types = None if token_type_ids is None else tensor(token_type_ids)
        with torch.inference_mode():
            return self.model(t, mask, types).float().cpu().numpy()

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "request_end": "outputs copied to the host"}


def build(spec: EmbeddingSpec, resolved: ew.ResolvedEmbedding, probe: DeviceProbe,
          trust_remote_code: bool = False) -> Built:
    model = ew.build_model(resolved, spec, probe.torch_device, DTYPES[spec.dtype])
    ex = TorchEmbeddingExecutor(model, probe.torch_device)
    return Built(ex, ex.describe(), ew.param_count(model), resolved.vocab_size)
