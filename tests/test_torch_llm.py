"""The torch runner on real tiny models: exact output length and coherent timings."""
import pytest
import torch

from infra_bench.backends.torch import TorchLlmRunner
from infra_bench.devices import select_device
from infra_bench.spec import spec_from_dict
from infra_bench.workloads import llm


def _runner(arch: str):
    spec = spec_from_dict({"arch": arch})
    resolved = llm.resolve(spec)
    probe = select_device("cpu")
    model = llm.build(spec, resolved, probe.torch_device)
    return TorchLlmRunner(model, probe), model


@pytest.mark.parametrize("arch", ["llama-tiny", "gpt2-tiny"])
@pytest.mark.parametrize("batch, prompt, out", [(1, 12, 9), (3, 5, 2)])
def test_output_length_is_forced_and_timings_are_coherent(arch, batch, prompt, out):
    runner, model = _runner(arch)
    calls = []
    hook = model.register_forward_hook(lambda m, args, kwargs, output: calls.append(kwargs["input_ids"].shape),
                                       with_kwargs=True)
    ids = llm.prompt_tokens(batch, prompt, model.config.vocab_size, 0, torch.device("cpu"))
    t = runner.run(ids, out)
    hook.remove()
    assert t.output_len == out
    assert calls == [(batch, prompt)] + [(batch, 1)] * (out - 1)  # one prefill, out-1 decode steps
    assert 0 < t.ttft_s < t.e2e_s
    assert len(t.itl_s) == out - 1 and all(g > 0 for g in t.itl_s)
    assert t.tpot_s == pytest.approx(sum(t.itl_s) / (out - 1))
    assert t.tpot_s == pytest.approx((t.e2e_s - t.ttft_s) / (out - 1))


def test_prompt_tokens_are_seeded():
    a = llm.prompt_tokens(2, 8, 100, 7, torch.device("cpu"))
    b = llm.prompt_tokens(2, 8, 100, 7, torch.device("cpu"))
    assert torch.equal(a, b) and a.shape == (2, 8) and int(a.max()) < 100
