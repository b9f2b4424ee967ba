import pytest
import torch

from infra_bench.errors import UserError
from infra_bench.spec import spec_from_dict
from infra_bench.workloads import llm

REFERENCED = [a for a in llm.catalog().values() if a.params]


def test_catalog_has_the_required_shapes():
    assert {"llama-tiny", "gpt2-small", "llama-3.1-8b", "qwen2.5-7b"} <= set(llm.catalog())


@pytest.mark.parametrize("arch", REFERENCED, ids=lambda a: a.id)
def test_built_parameter_count_matches_the_reference(arch):
    """Built on the meta device (no memory), the parameter count equals the published one."""
    resolved = llm.resolve(spec_from_dict({"arch": arch.id}))
    from transformers import AutoModelForCausalLM
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(resolved.config)
    assert llm.param_count(model) == arch.params


def test_unknown_arch_and_too_long_requests_are_refused():
    with pytest.raises(UserError, match="unknown architecture 'llama-tny' \\(did you mean 'llama-tiny'\\?\\)"):
        llm.resolve(spec_from_dict({"arch": "llama-tny"}))
    spec = spec_from_dict({"arch": "gpt2-tiny", "prompt_len": 1000, "output_len": 100})
    with pytest.raises(UserError, match="1100 exceeds the model's 1024 positions"):
        llm.check_cells(spec, llm.resolve(spec))


def test_reading_the_run_catalog_leaves_the_shared_catalog_as_read():
    """workloads.llm.catalog() took the `catalog` flags out of the cached architectures('llm') entries it
    read, so any later reader of that cache (archs, serve --arch) saw the published models unflagged."""
    from infra_bench.catalog import architectures
    from infra_bench.workloads import llm

    llm.catalog.cache_clear()
    llm.catalog()
    assert architectures("llm")["gpt2-small"].get("catalog") is True
