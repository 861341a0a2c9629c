"""Domain errors: one base class, a status code per subclass, one handler in the app.

Messages are written for the caller and never contain submitted values (they may be personal data).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DoudiError(Exception):
    """Base class of every error the service turns into an HTTP response."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or []

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.detail:
            out["detail"] = self.detail
        return out


class BadRequest(DoudiError):
    """The request is well formed but cannot be served as asked."""

    status_code = 400
    code = "bad_request"


class Unauthorized(DoudiError):
    """No valid bearer token."""

    status_code = 401
    code = "unauthorized"


class Forbidden(DoudiError):
    """The caller's role may not do this (region scope never gives 403: see ``NotFound``)."""

    status_code = 403
    code = "forbidden"


class NotFound(DoudiError):
    """No such record, or one outside the caller's regions (indistinguishable on purpose)."""

    status_code = 404
    code = "not_found"


class Conflict(DoudiError):
    """The record changed since the caller read it (optimistic version check) or breaks a uniqueness rule."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(DoudiError):
    """Too many households in one call."""

    status_code = 413
    code = "payload_too_large"


class InvalidInput(DoudiError):
    """The submitted records break the data contract; ``detail`` locates each problem without its value."""

    status_code = 422
    code = "invalid_input"


class NotReady(DoudiError):
    """The pinned model is not loaded (yet)."""

    status_code = 503
    code = "not_ready"
