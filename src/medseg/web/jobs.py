"""Background jobs of ``medseg serve``: segmentations and trainings, with progress and cancel.

A job runs in a worker thread. Its function reports progress with `Job.report`, which
also raises `Cancelled` once the job was cancelled; a cancelled job's result is
discarded even when its function cannot be interrupted (a method call in progress runs to its
end, then nothing is kept). Jobs write files only through atomic renames, so a cancelled or
interrupted job leaves nothing half-written.

Examples
--------
>>> jobs = Jobs(workers=1)
>>> job = jobs.submit("demo", lambda job: {"answer": 42})
>>> jobs.wait(job.id, timeout=5).state, job.result
('done', {'answer': 42})
>>> jobs.shutdown()
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medseg.errors import MedsegError
from medseg.web.errors import NotFound

__all__ = ["Cancelled", "Job", "Jobs"]

log = logging.getLogger(__name__)

FINAL = ("done", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside a job's function by `Job.report` once the job is cancelled."""


@dataclass
class Job:
    """One background job.

    Parameters
    ----------
    id : str
    kind : str
        ``segment`` or ``train``.
    state : str
        ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
    progress : float
        0 to 1.
    message : str
    result : dict
        What a finished job produced (the prediction's case, the new model's id).
    """

    id: str
    kind: str
    state: str = "queued"
    progress: float = 0.0
    message: str = "queued"
    result: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, progress: float | None = None, message: str | None = None) -> None:
        """Record progress (0 to 1) and a message; raise `Cancelled` when cancelled.

        Parameters
        ----------
        progress : float, optional
        message : str, optional
        """
        if self.cancel_event.is_set():
            raise Cancelled()
        if progress is not None:
            self.progress = float(min(max(progress, 0.0), 1.0))
        if message is not None:
            self.message = message

    @property
    def cancelled(self) -> bool:
        """True once `Jobs.cancel` was called."""
        return self.cancel_event.is_set()

    def as_dict(self) -> dict[str, Any]:
        """The job as the API shows it: ``id``, ``kind``, ``state``, ``progress``, ``message``, ``result``."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "progress": round(self.progress, 3),
                "message": self.message, "result": self.result}


class Jobs:
    """Runs jobs on at most ``workers`` threads at a time.

    Parameters
    ----------
    workers : int
        Jobs running at once; the others wait (``queued``).
    """

    def __init__(self, workers: int = 2) -> None:
        self._jobs: dict[str, Job] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._slots = threading.Semaphore(workers)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, kind: str, fn: Callable[[Job], dict[str, Any] | None]) -> Job:
        """Start ``fn(job)`` in the background; return the job.

        Parameters
        ----------
        kind : str
        fn : callable
            Takes the `Job`; returns the result dict. A [`MedsegError`][medseg.errors.MedsegError]
            it raises fails the job with its message.

        Returns
        -------
        Job
        """
        if self._closed:
            raise MedsegError("the server is shutting down")
        with self._lock:
            job = Job(f"{kind[:1]}{next(self._ids)}", kind)
            self._jobs[job.id] = job
        t = threading.Thread(target=self._run, args=(job, fn), name=f"medseg-job-{job.id}", daemon=True)
        self._threads[job.id] = t
        t.start()
        return job

    def _run(self, job: Job, fn: Callable[[Job], dict[str, Any] | None]) -> None:
        with self._slots:
            if job.cancelled:
                return
            job.state, job.message = "running", "running"
            try:
                result = fn(job)
                if job.cancelled:
                    return
                job.result = dict(result or {})
                job.progress, job.state = 1.0, "done"
                job.message = job.result.get("message", "done")
            except Cancelled:
                job.state, job.message = "cancelled", "cancelled"
            except MedsegError as exc:
                job.state, job.message = ("cancelled", "cancelled") if job.cancelled else ("failed", str(exc))
            except Exception as exc:  # noqa: BLE001 - a job's failure is reported, never raised into the server
                log.exception("job %s failed", job.id)
                job.state = "cancelled" if job.cancelled else "failed"
                job.message = "cancelled" if job.cancelled else f"internal error: {type(exc).__name__}: {exc}"

    def get(self, job_id: str) -> Job:
        """The job ``job_id``.

        Raises
        ------
        NotFound
        """
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job '{job_id}'")
        return job

    def list(self) -> list[Job]:
        """Every job, oldest first."""
        return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job:
        """Cancel the job ``job_id`` (a finished job stays as it is).

        Parameters
        ----------
        job_id : str

        Returns
        -------
        Job
        """
        job = self.get(job_id)
        if job.state not in FINAL:
            job.cancel_event.set()
            job.state, job.message = "cancelled", "cancelled"
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait for the job ``job_id`` to finish (or ``timeout`` seconds); return it."""
        t = self._threads.get(job_id)
        if t is not None:
            t.join(timeout)
        return self.get(job_id)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every running job and wait up to ``timeout`` seconds for their threads.

        Parameters
        ----------
        timeout : float
        """
        self._closed = True
        for job in list(self._jobs.values()):
            if job.state not in FINAL:
                job.cancel_event.set()
                job.state, job.message = "cancelled", "cancelled (server stopped)"
        end = time.monotonic() + timeout
        for t in list(self._threads.values()):
            t.join(max(0.0, end - time.monotonic()))
