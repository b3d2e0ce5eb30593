"""The shipped model opens with its weights in plain CPU buffers: on a CPU
with AMX, llama.cpp's AMX buffer crashes the process on the first prompt of
more than one token (providers/local/gguf.py)."""

from __future__ import annotations

import llama_cpp.llama_cpp as capi
import pytest

from voxfleet.providers.local.gguf import load_llama, model_params, plain_buffers

pytestmark = pytest.mark.integration


def test_the_model_evaluates_a_prompt_of_many_tokens_with_plain_buffers() -> None:
    llama = load_llama(n_ctx=256, n_threads=1, n_batch=64, verbose=False)
    assert llama.model_params.use_extra_bufts is False
    tokens = llama.tokenize(b"Hello there, how are you today?")
    assert len(tokens) > 4
    llama.eval(tokens)  # one batch of many tokens: where the AMX buffer crashed
    assert llama.n_tokens == len(tokens)


def test_only_loads_inside_it_get_plain_buffers() -> None:
    assert model_params().use_extra_bufts is False
    with plain_buffers():
        assert capi.llama_model_default_params().use_extra_bufts is False
    assert capi.llama_model_default_params().use_extra_bufts is True
