"""Start a worker job in the sandbox, watch its progress events and its resources, stop it at its limits.

The grader never trusts a path inside the worker's scratch folder after the worker started: the
progress events and the log are read through file descriptors opened before, so a worker that
replaces ``events.jsonl`` or ``worker.log`` by a symlink (to another student's result, say) only
changes its own view. Everything the worker writes is bounded (``Limits.output_mb``); the
processes it starts are counted (cgroup, or the process tree) and killed with it.

>>> outcome = run_job(job, scratch, worker="harness.workers.train", readable=[train_npz],
...                   threads=2, watch=my_watch, limits=limits)                            # doctest: +SKIP
>>> outcome.events[-1]["event"]                                                                     # doctest: +SKIP
'done'
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import Interrupted
from harness.sandbox import reaper
from harness.sandbox.bubblewrap import wrap
from harness.sandbox.cgroups import WorkerCgroup
from harness.sandbox.interrupt import stop_requested
from harness.sandbox.limits import Limits
from harness.sandbox.processes import die_with_parent, tree_tasks, user_task_count
from harness.workers.lifeline import ENV as LIFELINE_ENV

POLL_SECONDS = 0.2
RESOURCE_CHECK_SECONDS = 1.0
LOG_TAIL_BYTES = 8000
MAX_EVENT_BYTES_PER_POLL = 4 * 2**20
MAX_SCRATCH_ENTRIES = 20_000
# Process groups, setrlimit in the child and wait4 (POSIX). Elsewhere (Windows) a worker runs as a
# plain child process, stopped at its deadlines with no kernel limits (README, "Without bubblewrap").
POSIX_PROCESS_CONTROL = all(hasattr(os, name) for name in ("killpg", "wait4", "setsid"))
_WAITID = hasattr(os, "waitid")  # not on macOS: there the worker is reaped as soon as it exits
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# watch(events_so_far, seconds_since_start) -> None to go on, or a reason to stop the worker
Watch = Callable[[list[dict], float], "str | None"]
# on_event(event) for each progress event as it arrives (a progress display)
OnEvent = Callable[[dict], None]


@dataclass
class JobOutcome:
    """What a worker run left: its progress events, how it ended, which limit stopped it, its log's tail."""

    events: list[dict] = field(default_factory=list)
    returncode: int | None = None
    stopped_because: str | None = None  # a deadline of `watch`: the worker was killed
    breach: tuple[str, str] | None = None  # (status, reason): killed by the runner for passing a limit
    oom_killed: bool = False  # the memory cgroup's OOM killer fired
    memory_limit_hit: bool = False  # the worker's resident memory reached its cap
    cpu_seconds: float | None = None  # user + system time of the worker and its reaped children
    log_tail: str = ""
    isolation: str = ""
    bubblewrap: bool = False
    limits: Limits = field(default_factory=Limits)
    threads: int = 1

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the worker. Bubblewrap reports a signalled child as 128 + signal."""
        number = None
        if self.returncode is not None and self.returncode < 0:
            number = -self.returncode
        elif self.bubblewrap and self.returncode is not None and 128 < self.returncode < 128 + 65:
            number = self.returncode - 128
        if number is None:
            return None
        try:
            return signal.Signals(number).name
        except ValueError:
            return f"signal {number}"


class _Reader:
    """Reads a file the worker appends to through our own descriptor, never through its path again."""

    def __init__(self, fd: int) -> None:
        self.fd, self.offset = fd, 0

    def read_new(self, limit: int = MAX_EVENT_BYTES_PER_POLL) -> bytes:
        size = os.fstat(self.fd).st_size
        if size < self.offset:  # truncated by the worker: start again from its end
            self.offset = size
        chunk = _pread(self.fd, min(limit, size - self.offset), self.offset)
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete

    def tail(self, size: int) -> bytes:
        end = os.fstat(self.fd).st_size
        return _pread(self.fd, size, max(0, end - size))


def _pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows: the descriptor is only ours, seeking is safe
    return os.read(fd, size)


def _parse_events(chunk: bytes) -> list[dict]:
    events = []
    for line in chunk.splitlines():
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            continue  # a line student code wrote into our file is ignored, not trusted
        if (
            isinstance(event, dict)
            and isinstance(event.get("event"), str)
            and isinstance(event.get("time", 0.0), (int, float))
            and not isinstance(event.get("time"), bool)
        ):
            # deadlines run on the grader's clock: a worker could stamp its events in the future
            event["worker_time"], event["time"] = event.get("time"), time.time()
            events.append(event)
    return events


def _kill_group(process: subprocess.Popen) -> None:
    try:
        if POSIX_PROCESS_CONTROL:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _folder_size(folder: Path) -> tuple[int, int]:
    """(bytes, entries) under `folder`, not following symlinks; stops counting past MAX_SCRATCH_ENTRIES."""
    total, entries, todo = 0, 0, [folder]
    while todo and entries <= MAX_SCRATCH_ENTRIES:
        try:
            with os.scandir(todo.pop()) as listing:
                for entry in listing:
                    entries += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            todo.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total, entries


def _child_setup(
    limits: Limits, threads: int, cgroup: WorkerCgroup | None, nproc: int | None, grader: int | None = None
) -> None:
    """In the forked child, before exec: join the cgroup, set the rlimits, die with the grader (`grader`:
    its process id, read before the fork)."""
    if cgroup is not None:
        cgroup.join()
    limits.apply(threads, nproc)
    die_with_parent(grader)


def _nproc_cap(limits: Limits, cgroup: WorkerCgroup | None) -> int | None:
    """RLIMIT_NPROC, when it is the only hard cap available: it counts every task of the user, so the
    cap is the user's current count plus the worker's allowance; root is exempt from it anyway."""
    if (cgroup is not None and cgroup.pids is not None) or os.getuid() == 0 or sys.platform != "linux":
        return None
    return user_task_count() + limits.processes


def run_command(
    argv: list[str],
    env: dict[str, str],
    scratch: Path,
    *,
    limits: Limits,
    threads: int,
    watch: Watch,
    events_path: Path | None = None,
    isolation: str = "",
    bubblewrap: bool = False,
    on_event: OnEvent | None = None,
    pass_fds: tuple[int, ...] = (),
) -> JobOutcome:
    """Run an already wrapped command under `limits`, watching it; the building block of `run_job`.
    `pass_fds`: descriptors the worker inherits (its lifeline).
    Raises :class:`Interrupted`, the worker killed, once the grader is told to stop (Ctrl-C, SIGTERM)."""
    if (stop := stop_requested()) is not None:  # a submission that had not started its worker yet: none starts
        raise Interrupted(stop)
    log_path = scratch / "worker.log"
    log_path.unlink(missing_ok=True)
    log_fd = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)
    events_fd = None
    if events_path is not None:
        events_path.unlink(missing_ok=True)
        events_fd = os.open(events_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)
    cgroup = WorkerCgroup.create(limits) if POSIX_PROCESS_CONTROL else None
    outcome = JobOutcome(
        isolation=f"{isolation}; {limits.describe(threads, cgroup, POSIX_PROCESS_CONTROL)}",
        bubblewrap=bubblewrap,
        limits=limits,
        threads=threads,
    )
    events_reader = _Reader(events_fd) if events_fd is not None else None
    if POSIX_PROCESS_CONTROL:
        nproc = _nproc_cap(limits, cgroup)
        grader = os.getpid()
        isolate = {
            "start_new_session": True,
            "preexec_fn": lambda: _child_setup(limits, threads, cgroup, nproc, grader),
        }
    else:
        isolate = {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    started = time.monotonic()
    last_check = -RESOURCE_CHECK_SECONDS
    # registered before the start: a grader killed from here on leaves nothing of the worker running
    token = reaper.watch(scratch, [] if cgroup is None else cgroup.folders()) if POSIX_PROCESS_CONTROL else None
    try:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=scratch,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
            **isolate,
        )
        if token is not None:
            reaper.group(token, process.pid)
        try:
            while True:
                # exited? (not reaped yet: while the worker is a zombie its process group id cannot be
                # reused, so killing the group below never hits an unrelated process)
                exited = (
                    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                    if POSIX_PROCESS_CONTROL and _WAITID
                    else process.poll()
                )
                if events_reader is not None:
                    _receive(outcome, _parse_events(events_reader.read_new()), on_event)
                if exited is not None:
                    break
                elapsed = time.monotonic() - started
                full = elapsed - last_check >= RESOURCE_CHECK_SECONDS
                if full:
                    last_check = elapsed
                outcome.breach = _check_resources(process.pid, scratch, limits, cgroup, full=full)
                reason = None if outcome.breach else watch(outcome.events, elapsed)
                if stop_requested() is not None:  # the grader is stopping: the worker dies at this poll
                    break
                if outcome.breach or reason:
                    outcome.stopped_because = reason
                    break
                time.sleep(POLL_SECONDS)
        finally:
            _kill_group(process)  # the worker, if still running, and anything left in its session
            if cgroup is not None:
                cgroup.kill_all()  # and anything that left the session (setsid, double fork)
            if token is not None:
                reaper.release(token)  # before the reaping: its process group id is not reused until then
                token = None
            if POSIX_PROCESS_CONTROL and process.returncode is None:
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = outcome.returncode = os.waitstatus_to_exitcode(status)
                outcome.cpu_seconds = usage.ru_utime + usage.ru_stime
            else:
                outcome.returncode = process.wait()
        if cgroup is not None:
            outcome.oom_killed = cgroup.oom_killed()
            outcome.memory_limit_hit = cgroup.memory_limit_hit()
            if outcome.breach is None and cgroup.process_limit_hit():
                outcome.breach = ("killed", _process_reason(limits))
        if events_reader is not None:
            _receive(outcome, _parse_events(events_reader.read_new()), on_event)
        outcome.log_tail = _pread(log_fd, LOG_TAIL_BYTES, max(0, os.fstat(log_fd).st_size - LOG_TAIL_BYTES)).decode(
            "utf-8", "replace"
        )
    finally:
        if token is not None:
            reaper.release(token)  # a worker that never started
        if cgroup is not None:
            cgroup.remove()  # kills whatever escaped the session (setsid, double fork), then rmdir
        os.close(log_fd)
        if events_fd is not None:
            os.close(events_fd)
    if (stop := stop_requested()) is not None:  # killed by the stop, not by its code: no outcome to grade
        raise Interrupted(stop)
    return outcome


def _receive(outcome: JobOutcome, events: list[dict], on_event: OnEvent | None) -> None:
    outcome.events.extend(events)
    if on_event is not None:
        for event in events:
            try:
                on_event(event)
            except Exception:  # a progress display never stops grading
                pass


def _process_reason(limits: Limits) -> str:
    return f"the worker tried to run more than {limits.processes} processes and threads (process limit): it was stopped"


def _check_resources(
    pid: int, scratch: Path, limits: Limits, cgroup: WorkerCgroup | None, full: bool
) -> tuple[str, str] | None:
    """A (status, reason) breach of a limit the kernel does not stop by itself, or None."""
    if cgroup is not None and cgroup.process_limit_hit():
        return "killed", _process_reason(limits)
    if cgroup is None or cgroup.pids is None:
        tasks = tree_tasks(pid)
        if tasks > limits.processes:
            return "killed", _process_reason(limits)
    if cgroup is not None and cgroup.oom_killed():
        return "out_of_memory", (
            f"the worker used more than its resident-memory limit of {limits.resident_mb} MiB "
            "and was stopped by the kernel's out-of-memory killer"
        )
    if full:
        size, entries = _folder_size(scratch)
        if size > limits.output_mb * 2**20:
            return "killed", (
                f"the worker wrote more than its output limit of {limits.output_mb} MiB "
                "(log, saved files): it was stopped"
            )
        if entries > MAX_SCRATCH_ENTRIES:
            return "killed", f"the worker created more than {MAX_SCRATCH_ENTRIES} files: it was stopped"
    return None


def run_job(
    job: dict,
    scratch: Path,
    *,
    worker: str,
    readable: list[Path],
    threads: int,
    watch: Watch,
    limits: Limits,
    use_bubblewrap: bool | None = None,
    on_event: OnEvent | None = None,
) -> JobOutcome:
    """Run ``python -m <worker>`` (``harness.workers.train``, ``harness.workers.evaluate``) on `job` in
    `scratch`; return what it reported. The job gets its events file, threads and limits added."""
    scratch.mkdir(parents=True, exist_ok=True)
    events_path = scratch / "events.jsonl"
    job = {
        **job,
        "events": str(events_path),
        "threads": threads,
        "limits": {
            "memory_mb": limits.memory_mb,
            "resident_mb": limits.resident_mb,
            "processes": limits.processes,
            "open_files": limits.open_files,
            "output_mb": limits.output_mb,
            "tmp_mb": limits.tmp_mb,
            "cpu_seconds": limits.cpu_seconds(threads),
        },
    }
    job_path = scratch / "job.json"
    job_path.unlink(missing_ok=True)
    job_path.write_text(json.dumps(job), encoding="utf-8")
    with lifeline() as read_end:
        argv, env, isolation = wrap(
            [sys.executable, "-m", worker, str(job_path)],
            scratch=scratch,
            readable=readable,
            threads=threads,
            use_bubblewrap=use_bubblewrap,
            limits=limits,
            extra_env={} if read_end is None else {LIFELINE_ENV: str(read_end)},
        )
        return run_command(
            argv,
            env,
            scratch,
            limits=limits,
            threads=threads,
            watch=watch,
            events_path=events_path,
            isolation=isolation,
            bubblewrap=Path(argv[0]).name == "bwrap",
            on_event=on_event,
            pass_fds=() if read_end is None else (read_end,),
        )


@contextmanager
def lifeline() -> Iterator[int | None]:
    """The read end of a pipe whose only write end is this grader's, for the worker started inside
    the block (``harness.workers.lifeline``): it reads end-of-file once the grader is gone, however
    it died, and ends itself. Both ends are close-on-exec here, so no other worker inherits them.
    None where processes are not POSIX."""
    if not POSIX_PROCESS_CONTROL:
        yield None
        return
    read_end, write_end = os.pipe()
    try:
        yield read_end
    finally:
        os.close(read_end)
        os.close(write_end)
