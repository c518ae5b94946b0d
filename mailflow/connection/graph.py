"""The Microsoft Graph client the Graph source and the Graph transport share (app-only, httpx).

Authenticated JSON/bytes calls with 401 refresh and 429/503 Retry-After handling; Graph's
errors explained in one sentence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mailflow.connection.oauth import GRAPH_SCOPE, TokenProvider, token_provider_from_config
from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError

log = logging.getLogger(__name__)

GRAPH_URL = "https://graph.microsoft.com/v1.0"


class GraphError(Exception):
    """An HTTP answer Graph gave that we cannot get past by waiting."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"throttled; retry after {retry_after:.0f} s")
        self.retry_after = retry_after


def explain_graph_error(exc: GraphError, mailbox: str) -> str:
    """One sentence a council IT officer can act on."""
    if exc.status == 401:
        return ("Graph rejected the token: check tenant_id/client_id and that admin consent "
                "was granted for the Microsoft Graph application permissions")
    if exc.status == 403:
        return (f"the app may not use {mailbox}: grant the Graph application permissions "
                f"Mail.ReadWrite and Mail.Send with admin consent, and check that an "
                f"Application Access Policy includes this mailbox ({exc.code})")
    if exc.status == 404 and exc.code in ("ErrorInvalidUser", "ResourceNotFound",
                                          "MailboxNotEnabledForRESTAPI"):
        return f"mailbox {mailbox} not found in this tenant or has no Exchange Online licence"
    return f"Graph answered {exc.status} {exc.code}: {exc.message[:200]}"


class GraphClient:
    """Authenticated JSON/bytes calls with 401 refresh and 429/503 Retry-After handling."""

    def __init__(self, tokens: TokenProvider, base_url: str = GRAPH_URL, timeout: float = 30.0,
                 max_retries: int = 4, sleep: Callable[[float], None] = time.sleep,
                 http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._sleep = sleep
        self._max_retries = max_retries
        self._http = http or httpx.Client(timeout=timeout)

    def url(self, path: str) -> str:
        return path if path.startswith("https://") or path.startswith("http://") \
            else f"{self.base_url}{path}"

    def request(self, method: str, path: str, *, stream_limit: int | None = None,
                **kwargs: Any) -> httpx.Response:
        """The response (2xx), GraphError, or Throttled when retries ran out.

        With `stream_limit`, the body is read up to that many bytes plus one; a longer body
        comes back truncated with `response.extensions["truncated"] = True`.
        """
        refreshed = False
        attempt = 0
        extra = dict(kwargs.pop("headers", None) or {})
        while True:
            kwargs["headers"] = {**extra, "Authorization": f"Bearer {self._tokens.token()}"}
            if stream_limit is None:
                resp = self._http.request(method, self.url(path), **kwargs)
            else:
                resp = self._stream(method, path, stream_limit, **kwargs)
            if resp.status_code < 300:
                return resp
            if resp.status_code == 401 and not refreshed:
                refreshed = True
                self._tokens.invalidate()
                continue
            if resp.status_code in (429, 503, 504):
                wait = _retry_after(resp)
                if attempt >= self._max_retries:
                    raise Throttled(wait)
                attempt += 1
                log.warning("Graph throttled (%d): waiting %.0f s", resp.status_code, wait)
                self._sleep(wait)
                continue
            raise _graph_error(resp)

    def _stream(self, method: str, path: str, limit: int, **kwargs: Any) -> httpx.Response:
        with self._http.stream(method, self.url(path), **kwargs) as resp:
            if resp.status_code >= 300:
                resp.read()
                return resp
            length = resp.headers.get("Content-Length")
            chunks: list[bytes] = []
            size = 0
            truncated = length is not None and length.isdigit() and int(length) > limit
            if not truncated:
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        truncated = True
                        break
            out = httpx.Response(resp.status_code, headers=resp.headers,
                                 content=b"".join(chunks), request=resp.request)
            out.extensions["truncated"] = truncated
            return out

    def close(self) -> None:
        self._http.close()


def _retry_after(resp: httpx.Response) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0


def _graph_error(resp: httpx.Response) -> GraphError:
    try:
        err = resp.json().get("error", {})
        return GraphError(resp.status_code, str(err.get("code", "")), str(err.get("message", "")))
    except ValueError:
        return GraphError(resp.status_code, "", resp.text[:200])


def graph_client_from_config(options: Mapping[str, Any], env: ConnectorEnv) -> GraphClient:
    try:
        timeout = float(options.get("timeout", 30))
        retries = int(options.get("max_retries", 4))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{env.where}: timeout/max_retries: not a number ({exc})") from None
    return GraphClient(token_provider_from_config(options, env, GRAPH_SCOPE),
                       base_url=str(options.get("base_url", GRAPH_URL)), timeout=timeout,
                       max_retries=retries)
