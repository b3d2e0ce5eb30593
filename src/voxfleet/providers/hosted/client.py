"""One SDK client per endpoint, and the SDK's errors as voxfleet's.

The SDK does not retry (``max_retries=0``): the provider base retries what is
worth retrying within the caller's deadline, and the fallback chain moves on.
A key is read from its file when the file changes (Key Vault rotates it in
place through the Secrets Store CSI driver; no restart). With ``auth = "entra"``
tokens come from azure-identity's DefaultAzureCredential: on AKS, the pod's
workload identity, with no key anywhere."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import openai
from openai import AsyncAzureOpenAI, AsyncOpenAI

from voxfleet.errors import ConfigError, ProviderError, ProviderTimeout, ProviderUnavailable
from voxfleet.providers.endpoints import Endpoint

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


class KeyFile:
    """The API key in ``path``, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._key = ""
        self.read()  # a missing or empty file is a configuration error at start-up

    def read(self) -> str:
        try:
            info = os.stat(self._path)
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._stamp:
                key = self._path.read_text(encoding="utf-8").strip()
                if not key:
                    raise ConfigError(f"api_key_file: {self._path} is empty")
                self._key, self._stamp = key, stamp
        except OSError as e:
            if not self._key:
                raise ConfigError(f"api_key_file: cannot read {self._path}: {e.strerror}") from e
        return self._key

    async def __call__(self) -> str:
        return self.read()


def make_client(endpoint: Endpoint, credential: AsyncTokenCredential | None = None) -> AsyncOpenAI:
    """The SDK client of ``endpoint``. ``credential``: an azure-identity async
    credential for ``auth = "entra"`` (default: DefaultAzureCredential)."""
    api_key: str | Callable[[], Awaitable[str]]
    if endpoint.auth == "key" and endpoint.api_key_file is not None:  # validated: it is set
        api_key = KeyFile(endpoint.api_key_file)
    else:
        api_key = "unused"
    if endpoint.api == "openai":
        return AsyncOpenAI(
            base_url=endpoint.url, api_key=api_key, max_retries=0, timeout=endpoint.request_seconds
        )
    if endpoint.auth == "entra":
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

        provider = get_bearer_token_provider(credential or DefaultAzureCredential(), AZURE_SCOPE)
        return AsyncAzureOpenAI(
            azure_endpoint=endpoint.url,
            api_version=endpoint.api_version,
            azure_ad_token_provider=provider,
            max_retries=0,
            timeout=endpoint.request_seconds,
        )
    return AsyncAzureOpenAI(
        azure_endpoint=endpoint.url,
        api_version=endpoint.api_version,
        api_key=api_key,
        max_retries=0,
        timeout=endpoint.request_seconds,
    )


@contextlib.contextmanager
def sdk_errors(name: str, what: str) -> Iterator[None]:
    """The SDK's errors as ProviderErrors: unavailable (retryable: refused, reset,
    429, 5xx) or not (a 4xx the same request would get again)."""
    try:
        yield
    except openai.APITimeoutError as e:
        raise ProviderTimeout(f"{name}: {what}: no answer in time") from e
    except openai.APIConnectionError as e:
        raise ProviderUnavailable(f"{name}: {what}: cannot connect: {e}") from e
    except openai.APIStatusError as e:
        status = e.status_code
        message = f"{name}: {what}: HTTP {status}: {_detail(e)}"
        if status == 429 or status >= 500:
            raise ProviderUnavailable(message) from e
        raise ProviderError(message) from e
    except openai.OpenAIError as e:
        raise ProviderError(f"{name}: {what}: {e}") from e


def _detail(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:200]
    return str(error.message)[:200]
