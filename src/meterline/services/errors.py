"""Errors services raise; the web layer maps each to a status and the contract's body."""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFoundError", "ServiceError", "Unauthorized"]


class ServiceError(Exception):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param


class Invalid(ServiceError):
    status = 422
    code = "invalid_value"


class Unauthorized(ServiceError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(ServiceError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFoundError(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
