"""The threads Python task attempts run on.

The runtime hands each attempt over with ``TaskThreads.submit`` and waits
for its answer on its own thread, without the GIL. Attempts run on daemon
threads made here, so an interpreter that exits with attempts still
running stops them like any daemon thread. An attempt past its deadline,
or cancelled, is interrupted in its thread: ``TaskInterrupted`` is raised
there at the next Python instruction (a blocking C call, such as
``time.sleep``, finishes first).
"""

from __future__ import annotations

import ctypes
import queue
import threading
from typing import Any, Callable, Optional


class TaskInterrupted(BaseException):
    """Raised inside an attempt that passed its deadline or was cancelled.
    A ``BaseException``, so ``except Exception`` in a task does not swallow
    it."""


_current = threading.local()


def interruption() -> Optional[str]:
    """Why the attempt running on this thread was interrupted, if it was."""
    job = getattr(_current, "job", None)
    return job.interrupted if job is not None else None


class _Attempt:
    """One attempt handed over by the runtime; the runtime keeps it as the
    ticket it may ``interrupt``."""

    __slots__ = ("run", "context", "attempt", "reply", "thread_id", "interrupted", "lock")

    def __init__(self, run: Callable[[str, int], str], context: str, attempt: int, reply: Any) -> None:
        self.run = run
        self.context = context
        self.attempt = attempt
        self.reply = reply
        self.thread_id: Optional[int] = None
        self.interrupted: Optional[str] = None
        self.lock = threading.Lock()

    def interrupt(self, why: str) -> None:
        """Stops the attempt: raises ``TaskInterrupted`` in its thread."""
        with self.lock:
            if self.interrupted is not None:
                return
            self.interrupted = why
            if self.thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread_id), ctypes.py_object(TaskInterrupted)
                )


class TaskThreads:
    """As many daemon threads as attempts run at once (idle ones are
    reused)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: "queue.SimpleQueue[_Attempt]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0

    def submit(self, run: Callable[[str, int], str], context: str, attempt: int, reply: Any) -> _Attempt:
        job = _Attempt(run, context, attempt, reply)
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                spawn = False
            else:
                self._count += 1
                spawn = True
        self._queue.put(job)
        if spawn:
            threading.Thread(target=self._work, name=f"{self._name}-{self._count}", daemon=True).start()
        return job

    def _work(self) -> None:
        while True:
            try:
                self._run(self._queue.get())
            except TaskInterrupted:
                pass  # an interruption that arrived just after its attempt ended
            finally:
                with self._lock:
                    self._idle += 1

    @staticmethod
    def _run(job: _Attempt) -> None:
        with job.lock:
            if job.interrupted is not None:
                return
            job.thread_id = threading.get_ident()
        _current.job = job
        try:
            try:
                text = job.run(job.context, job.attempt)
            except TaskInterrupted:
                return  # the runtime stopped waiting for this answer
            except BaseException as error:  # noqa: BLE001 - every failure is the task's answer
                job.reply.raised(type(error).__name__, str(error))
            else:
                job.reply.output(text)
        finally:
            with job.lock:
                job.thread_id = None
            _current.job = None
