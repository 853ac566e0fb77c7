"""What went wrong with a request to a remote store, in one line: an HTTP status, a
timeout, a refused connection; and which errors are worth trying again."""

from __future__ import annotations

import asyncio

from ._errors import ImageReadError


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)  # botocore ClientError
    if isinstance(response, dict):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(code) if code else None
    return None


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in type(
        exc).__name__


def is_transient(exc: BaseException) -> bool:
    """A server error (5xx, 429) or a dropped connection: worth trying again."""
    if isinstance(exc, ImageReadError) or _is_timeout(exc):
        return False
    status = _status(exc)
    if status is not None:
        return status >= 500 or status == 429
    if isinstance(exc, ConnectionError):  # reset, aborted, refused mid-way
        return True
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"ServerDisconnectedError", "ClientConnectionError",
                         "ClientPayloadError"})


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """One line saying what went wrong with a request: the HTTP status, a timeout, a
    refused connection, a missing library."""
    if _is_timeout(exc):
        return f"timed out (no answer in {timeout:g} s)" if timeout else "timed out"
    status = _status(exc)
    if isinstance(exc, PermissionError) and status is None:
        status = 403
    if status is not None:
        from http import HTTPStatus

        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        return f"HTTP {status} {phrase}".rstrip()
    if isinstance(exc, FileNotFoundError):
        return "not found (HTTP 404)"
    names = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, ConnectionError) or "ClientConnectorError" in names:
        return f"cannot connect ({exc})"
    return str(exc) or type(exc).__name__


def forbidden(exc: BaseException) -> bool:
    return isinstance(exc, ImageReadError) and str(exc.cause).startswith("HTTP 403")


def ignored_range(byte_range, nbytes: int) -> str | None:
    """Why an answer of ``nbytes`` to a request for ``byte_range`` is wrong, or None: more
    bytes than asked means a server that ignores Range requests and sends the whole file
    (Python's ``http.server`` does), which a sharded array's index and chunks cannot use."""
    suffix = getattr(byte_range, "suffix", None)
    start, end = getattr(byte_range, "start", None), getattr(byte_range, "end", None)
    asked = suffix if suffix is not None else (
        end - start if start is not None and end is not None else None)
    if asked is None or nbytes <= asked:
        return None
    return (f"the server ignores HTTP Range requests (it sent {nbytes} bytes for a range "
            f"of {asked}); sharded zarr v3 arrays are read by byte ranges of their shard "
            f"files: serve them with a server that answers Range requests (nginx, Apache, "
            f"an object store), not Python's http.server")
