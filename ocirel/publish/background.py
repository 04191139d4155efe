"""Work in a thread whose value (or exception) is handed over through ``result()``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Run ``work`` in a (daemon) thread now; :meth:`result` waits for it and returns
    its value, or re-raises its exception here. The value is the only hand-over: the
    work must not set anything the caller reads."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._value: tuple[T] | None = None  # (value,) once the work returned
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = (work(),)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                self._error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value[0]
