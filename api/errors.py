from starlette.exceptions import HTTPException

from schemas.errors import TradecoreError


class ApiError(TradecoreError):
    """An error the API answers with a problem+json body."""

    status = 400
    title = "Bad request"


class AuthenticationFailed(ApiError):
    status = 401
    title = "Not authenticated"


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"


class RateLimited(ApiError):
    status = 429
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidQuery(ApiError):
    """A query parameter breaks a rule; the problem's ``errors`` name it (``field``) and the rule."""

    status = 422
    title = "Query is not valid"

    def __init__(self, message: str, *, field: str | None = None, rule: str = "query.invalid") -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class NotFound(ApiError):
    status = 404
    title = "Not found"


class ReadModelBehind(ApiError):
    """The projection has not yet read as far as the client asked (``?min_offset=``)."""

    status = 503
    title = "Read model behind"


class HistoryUnavailable(ApiError):
    status = 503
    title = "History unavailable"


class IdempotencyKeyReused(ApiError):
    status = 422
    title = "Idempotency-Key reused"


class ConfigurationError(TradecoreError):
    """The API is misconfigured and refuses to start."""


class BodyRefused(HTTPException):
    """A request body refused before its fields are read (too large, a key twice); ``errors`` name what is wrong.

    An HTTPException, so that FastAPI hands it on as it is while it reads the body (any other error there becomes a
    bare 400 "There was an error parsing the body")."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(status_code=status, detail=detail)
        self.errors = errors
