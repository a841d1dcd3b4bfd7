"""What every part of the ICE model shares: errors named like ICE's, times, paging, the state base."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_time(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime(TIME_FORMAT) if value else None


class IceError(Exception):
    """An ICE API error: ``code`` and ``message`` as the service answers them, with its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, recommend: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.recommend = recommend


def missing_parameter(name: str) -> IceError:
    return IceError("MissingParameter",
                    f'The input parameter "{name}" that is mandatory for processing this request is not supplied.')


def invalid_parameter(name: str, detail: str) -> IceError:
    return IceError("InvalidParameter", f'The specified parameter "{name}" is not valid: {detail}')


def resource_not_found(name: str, detail: str = "") -> IceError:
    return IceError("ResourceNotFound",
                    f'The specified resource for "{name}" could not be found.' + (f" {detail}" if detail else ""),
                    404)


def job_not_found(job_id: str) -> IceError:
    return IceError("JobNotFound", f'The specified job "{job_id}" could not be found.', 404)


def one_of(name: str, value: str | None, choices: tuple[str, str]) -> str:
    """``value``, or the first choice when it is not sent; InvalidParameter when it is neither choice."""
    value = value or choices[0]
    if value not in choices:
        raise invalid_parameter(name, f"must be {choices[0]} or {choices[1]}, got {value!r}.")
    return value


def up_to(name: str, value: int | None, *, default: int, maximum: int, unit: str = "") -> int:
    """``value``, or ``default`` when it is not sent; InvalidParameter when it is not in 1..maximum."""
    value = default if value is None else value
    if not 1 <= value <= maximum:
        raise invalid_parameter(name, f"must be between 1 and {maximum}{unit}, got {value}.")
    return value


def page_bounds(page_number: int | None, page_size: int | None, *, default_size: int, max_size: int,
                 size_name: str = "PageSize", number_name: str = "PageNumber") -> tuple[int, int]:
    size = up_to(size_name, page_size, default=default_size, maximum=max_size)
    number = 1 if page_number is None else page_number
    if number < 1:
        raise invalid_parameter(number_name, f"must be 1 or greater, got {number}.")
    return (number - 1) * size, size


class ModelState:
    """The state the parts of :class:`~localcloud.ice.models.IceModel` share; it sets them up."""

    region: str
    account_id: str
    _clock: Callable[[], datetime]
    _lock: threading.RLock
    _seq: int

    def _next_seq(self) -> int:
        """A number that orders what was created, templates and jobs alike."""
        self._seq += 1
        return self._seq
