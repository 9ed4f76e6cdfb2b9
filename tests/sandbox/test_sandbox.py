"""The sandbox and the worker limits, with real bubblewrap and real processes.

Most tests run a few lines of plain Python in the sandbox (no TensorFlow: a second each) and
check what it can see, what it can write, and the status and reason each limit gives. One
trains a tiny model without bubblewrap to check that the result says so.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_bwrap

from harness.cli import build_parser
from harness.config.protocol import load_protocol
from harness.pipeline.session import profile_limits
from harness.resources import bundled
from harness.results import ModelResult
from harness.sandbox import bubblewrap as sandbox
from harness.sandbox import cgroups, runner
from harness.sandbox.bubblewrap import SandboxUnavailable, python_mounts, wrap
from harness.sandbox.cgroups import cgroups_available
from harness.sandbox.limits import Limits
from harness.sandbox.runner import JobOutcome, _parse_events, run_command
from harness.training.train import _describe_death, _model_from_event

REPO = Path(__file__).resolve().parents[2]
# the only harness files a worker may see: the worker code
WORKER_FILES = sorted(p.name for p in (REPO / "harness" / "workers").glob("*.py"))
needs_pids_cgroup = pytest.mark.skipif(not cgroups_available()[0], reason="no pids cgroup can be created here")
needs_memory_cgroup = pytest.mark.skipif(not cgroups_available()[1], reason="no memory cgroup can be created here")


def _scratch(tmp_path: Path) -> Path:
    scratch = tmp_path / "out" / ".work" / "0123abcd" / "train"  # where the harness puts a worker
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def run_python(
    code: str,
    tmp_path: Path,
    *,
    limits: Limits = Limits(),
    bubblewrap: bool = True,
    readable: tuple[Path, ...] = (),
    deadline: float = 60,
) -> JobOutcome:
    """Run `code` with `python -c` as a worker would run: wrapped, limited, watched."""
    scratch = _scratch(tmp_path)
    argv, env, how = wrap(
        [sys.executable, "-c", textwrap.dedent(code)],
        scratch=scratch,
        readable=list(readable),
        limits=limits,
        use_bubblewrap=bubblewrap,
    )
    watch = lambda events, elapsed: "test deadline" if elapsed > deadline else None  # noqa: E731
    return run_command(argv, env, scratch, limits=limits, threads=1, watch=watch, isolation=how, bubblewrap=bubblewrap)


def last_json_line(outcome: JobOutcome) -> dict:
    lines = [line for line in outcome.log_tail.splitlines() if line.startswith("{")]
    assert lines, outcome.log_tail
    return json.loads(lines[-1])


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def listener():
    """A TCP server on the grading machine's loopback; records every connection it accepts."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, address = server.accept()
                accepted.append(address)
                connection.close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


# --------------------------------------------------------------------------- what is mounted


def test_python_mounts_never_expose_the_repository():
    """With an editable install the repository is on sys.path; only Python's own folders are mounted
    (a venv's lib/pythonX.Y, which holds site-packages but not the standard library, is not: every
    layout this machine can make is in tests/sandbox/test_python_layouts.py)."""
    mounts = python_mounts()
    assert mounts or sys.prefix.startswith("/usr")  # a system interpreter is all under /usr, mounted anyway
    for mount in mounts:
        assert not (mount == REPO or mount in REPO.parents), mount
        if mount.is_dir():
            assert mount.name in ("site-packages", "dist-packages", "lib-dynload") or (mount / "os.py").exists(), mount
        else:
            assert mount.name.startswith(("python", "libpython", "pyvenv.cfg")), mount


@needs_bwrap
def test_bubblewrap_mounts_nothing_around_the_scratch_folder(tmp_path):
    scratch = _scratch(tmp_path)
    argv, _, how = wrap(["true"], scratch=scratch, readable=[tmp_path / "train.npz"], limits=Limits())
    assert how.startswith("bubblewrap")
    sources = [Path(argv[i + 1]) for i, arg in enumerate(argv) if arg in ("--ro-bind", "--bind", "--ro-bind-try")]
    out = scratch.parents[2]
    for source in sources:
        if source in (scratch, tmp_path / "train.npz"):
            continue
        assert not (source == out or source in out.parents or out in source.parents), source
        assert not (source == REPO or source in REPO.parents), source
        if REPO in source.parents:  # the worker code, file by file: harness/__init__.py and harness/workers/*.py
            assert source == REPO / "harness" / "__init__.py" or (
                source.parent == REPO / "harness" / "workers" and source.suffix == ".py"
            ), source
    mounted = {
        Path(argv[i + 2]).relative_to(sandbox.HARNESS_MOUNT).as_posix()
        for i, arg in enumerate(argv)
        if arg == "--ro-bind" and argv[i + 2].startswith(sandbox.HARNESS_MOUNT)
    }
    assert mounted == {"harness/__init__.py", *(f"harness/workers/{name}" for name in WORKER_FILES)}, mounted


@needs_bwrap
def test_the_sandbox_sees_and_writes_only_what_it_is_given(tmp_path, listener):
    port, accepted = listener
    out = _scratch(tmp_path).parents[2]
    (out / "other_student").mkdir()
    (out / "other_student" / "result.json").write_text("{}")
    (out / "grades.csv").write_text("student,total\n")
    (out / ".work" / "data").mkdir()
    held_out_test_set = out / ".work" / "data" / "test-smoke.npz"
    np.savez(held_out_test_set, x_test=np.zeros((2, 28, 28, 1)))
    train = out / ".work" / "data" / "train-smoke.npz"
    np.savez(train, x_train=np.zeros((2, 28, 28, 1)))
    home = Path.home()
    secrets = [
        str(REPO),
        str(REPO / "submissions"),
        str(REPO / "rubric" / "default.toml"),
        str(held_out_test_set),
        str(out / "other_student" / "result.json"),
        str(out / "grades.csv"),
        "/etc/shadow",
        str(REPO.parent / "shared" / "data" / "mnist.npz"),
        os.environ.get("HARNESS_MNIST_NPZ", "/nonexistent"),
    ]
    marker = f"HARNESS-TEST-MARKER-{os.getpid()}"
    code = f'''
        import json, os, socket
        from pathlib import Path
        report = {{"uid": os.getuid(), "visible": [p for p in {secrets!r} if os.path.exists(p)]}}
        home = {str(home)!r}
        report["home"] = sorted(os.listdir(home)) if os.path.isdir(home) else []
        writes = {{}}
        for path in ["/usr/{marker}", "/{marker}", {str(out / marker)!r}, {str(home / marker)!r},
                     "/tmp/{marker}", "{marker}"]:
            try:
                with open(path, "x") as handle:
                    handle.write("x")
                writes[path] = "written"
            except OSError as error:
                writes[path] = error.strerror
        try:
            open({str(train)!r}, "r+b")
            writes["train"] = "opened for writing"
        except OSError as error:
            writes["train"] = error.strerror
        report["writes"] = writes
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            report["loopback"] = "connected"
        except OSError as error:
            report["loopback"] = error.strerror
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=2)
            report["internet"] = "connected"
        except OSError as error:
            report["internet"] = error.strerror
        import harness
        report["harness"] = harness.__file__
        report["harness_files"] = sorted(os.listdir(os.path.dirname(harness.__file__)))
        report["worker_files"] = sorted(os.listdir(os.path.join(os.path.dirname(harness.__file__), "workers")))
        import harness.workers.protocol
        report["grader_modules"] = {{}}
        for name in ("harness.results", "harness.sandbox", "harness.ingest", "harness.resources"):
            try:
                __import__(name)
                report["grader_modules"][name] = "imported"
            except ImportError as error:
                report["grader_modules"][name] = type(error).__name__
        print(json.dumps(report))
    '''
    outcome = run_python(code, tmp_path, readable=(train,))
    assert outcome.returncode == 0, outcome.log_tail
    report = last_json_line(outcome)
    assert report["uid"] == sandbox.SANDBOX_UID
    assert report["visible"] == [], report["visible"]
    python_parts = {m.relative_to(home).parts[0] for m in python_mounts() if home in m.parents}
    assert set(report["home"]) <= python_parts, report["home"]  # only the way to the Python installation
    writes = report["writes"]
    assert writes[f"/usr/{marker}"] == "Read-only file system"
    assert writes[f"/{marker}"] == "Read-only file system"
    assert writes[str(home / marker)] in ("Read-only file system", "No such file or directory")
    assert writes[marker] == "written"  # its own scratch folder
    assert writes[f"/tmp/{marker}"] == "written"  # its private /tmp ...
    assert writes["train"] == "Read-only file system"
    for host_path in (Path("/tmp") / marker, out / marker, home / marker, Path("/usr") / marker, Path("/") / marker):
        assert not host_path.exists(), host_path  # ... none of which reached the host
    assert (_scratch(tmp_path) / marker).exists()
    assert report["loopback"] == "Connection refused" and report["internet"] == "Network is unreachable"
    assert accepted == []
    assert report["harness"].startswith(sandbox.HARNESS_MOUNT)
    # the worker code only: no grader module, no rubric, no reference
    assert report["harness_files"] == ["__init__.py", "workers"], report["harness_files"]
    assert report["worker_files"] == WORKER_FILES, report["worker_files"]
    assert set(report["grader_modules"].values()) == {"ModuleNotFoundError"}, report["grader_modules"]


# --------------------------------------------------------------------------- each limit: status and reason


@needs_bwrap
def test_rlimits_are_set_in_the_sandbox(tmp_path):
    limits = Limits(memory_mb=3000, cpu_seconds_per_thread=77, open_files=99, output_mb=33)
    outcome = run_python(
        """
        import json, resource
        print(json.dumps({name: resource.getrlimit(getattr(resource, name))[0]
                          for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE")}))
    """,
        tmp_path,
        limits=limits,
    )
    assert last_json_line(outcome) == {
        "RLIMIT_AS": 3000 * 2**20,
        "RLIMIT_CPU": 77,
        "RLIMIT_NOFILE": 99,
        "RLIMIT_FSIZE": 33 * 2**20,
        "RLIMIT_CORE": 0,
    }
    assert "address space 3000 MiB" in outcome.isolation and "99 open files" in outcome.isolation


@needs_bwrap
def test_cpu_time_limit_is_a_timeout(tmp_path):
    outcome = run_python("while True: pass", tmp_path, limits=Limits(cpu_seconds_per_thread=1))
    assert outcome.signal_name == "SIGXCPU"
    status, reason = _describe_death(outcome)
    assert status == "timeout" and "CPU-time limit of 1 s" in reason


@needs_bwrap
def test_address_space_limit_is_out_of_memory(tmp_path):
    outcome = run_python(
        "blocks = [bytearray(256 * 2**20) for _ in range(16)]", tmp_path, limits=Limits(memory_mb=1024)
    )
    assert "MemoryError" in outcome.log_tail
    status, reason = _describe_death(outcome)
    assert status == "out_of_memory" and "1024 MiB of address space" in reason


@needs_bwrap
@needs_memory_cgroup
def test_resident_memory_limit_is_out_of_memory(tmp_path):
    outcome = run_python(
        'blocks = [b"x" * (50 * 2**20) for _ in range(20)]; import time; time.sleep(5)',
        tmp_path,
        limits=Limits(memory_mb=8192, resident_mb=256),
    )
    assert outcome.oom_killed
    status, reason = _describe_death(outcome)
    assert status == "out_of_memory" and "resident-memory limit of 256 MiB" in reason


STORM = """
    import os, time
    # {marker}
    for _ in range(80):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
    time.sleep(30)
"""


@needs_bwrap
@needs_pids_cgroup
def test_process_limit_with_a_pids_cgroup(tmp_path):
    marker = f"storm-{os.getpid()}-cgroup"
    started = time.monotonic()
    outcome = run_python(STORM.format(marker=marker), tmp_path, limits=Limits(processes=20))
    assert time.monotonic() - started < 20  # stopped, not left to sleep
    status, reason = _describe_death(outcome)
    assert status == "killed" and "more than 20 processes and threads" in reason
    time.sleep(0.5)
    assert processes_with(marker) == []  # the children went with the worker


@needs_bwrap
def test_process_limit_without_cgroups_is_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups.WorkerCgroup, "create", classmethod(lambda cls, limits: None))
    marker = f"storm-{os.getpid()}-counted"
    outcome = run_python(STORM.format(marker=marker), tmp_path, limits=Limits(processes=40))
    status, reason = _describe_death(outcome)
    assert status == "killed" and "more than 40 processes and threads" in reason
    assert "counted every 0.2 s" in outcome.isolation
    time.sleep(0.5)
    assert processes_with(marker) == []


@needs_bwrap
def test_output_limit_is_killed(tmp_path):
    outcome = run_python(
        """
        import time
        for n in range(8):
            with open(f"part{n}.bin", "wb") as handle:
                handle.write(b"x" * (3 * 2**20))
        time.sleep(20)
    """,
        tmp_path,
        limits=Limits(output_mb=10),
    )
    status, reason = _describe_death(outcome)
    assert status == "killed" and "output limit of 10 MiB" in reason


@needs_bwrap
def test_a_segfault_under_bubblewrap_is_sigsegv(tmp_path):
    outcome = run_python("import ctypes; ctypes.string_at(0)", tmp_path)
    assert outcome.returncode == 128 + 11  # bubblewrap's report of a signalled child
    status, reason = _describe_death(outcome)
    assert status == "crashed" and "SIGSEGV" in reason


# --------------------------------------------------------------------------- tamper-proofing


@needs_bwrap
def test_the_grader_never_follows_what_the_worker_put_in_its_folder(tmp_path):
    secret = tmp_path / "another_students_result.json"
    secret.write_text("SECRET GRADE 19.5/20\n")
    outcome = run_python(
        f"""
        import os
        print("before")
        os.unlink("worker.log"); os.symlink({str(secret)!r}, "worker.log")
    """,
        tmp_path,
    )
    assert "SECRET" not in outcome.log_tail and "before" in outcome.log_tail


def test_forged_events_cannot_set_test_metrics_or_move_files(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "create_improved_model_1.keras").write_bytes(b"model")
    (models / "create_improved_model_2.keras").symlink_to(tmp_path / "elsewhere.keras")
    (tmp_path / "elsewhere.keras").write_bytes(b"another student's model")
    base = ModelResult(name="create_improved_model_1", role="improved")
    honest = _model_from_event(
        base,
        {
            "status": "ok",
            "model_file": "create_improved_model_1.keras",
            "params": 12,
            "test_accuracy": 1.0,
            "test_errors": 0,
            "evaluated_with_student_code": True,
            "predictions_file": "../../x.npz",
        },
        models,
    )
    assert honest.status == "ok" and honest.params == 12
    assert honest.test_accuracy is None and honest.test_errors is None and honest.predictions_file is None
    assert not honest.evaluated_with_student_code
    traversal = _model_from_event(base, {"status": "ok", "model_file": "../../../other/result.json"}, models)
    assert traversal.status == "invalid" and traversal.model_file is None and "malformed" in traversal.reason
    linked = _model_from_event(
        ModelResult(name="create_improved_model_2", role="improved"),
        {"status": "ok", "model_file": "create_improved_model_2.keras"},
        models,
    )
    assert linked.status == "invalid" and "not a regular file" in linked.reason
    for forged in ({"status": "pending"}, {"status": "ok"}, {"status": "error", "params": "many"}, "not a dict"):
        assert _model_from_event(base, forged, models).status == "invalid", forged
    future = _parse_events(b'{"event": "model", "phase": "build", "name": "x", "time": 9e12}\nnot json\n[1]\n')
    assert len(future) == 1 and future[0]["time"] <= time.time() and future[0]["worker_time"] == 9e12


# --------------------------------------------------------------------------- limits configuration


def test_limits_per_profile_and_overrides(tmp_path):
    bundled_protocol = load_protocol()
    smoke, full = profile_limits(bundled_protocol, "smoke"), profile_limits(bundled_protocol, "full")
    assert smoke.memory_mb < full.memory_mb and smoke.cpu_seconds_per_thread < full.cpu_seconds_per_thread
    defaults = tomllib.loads(bundled("reference", "protocol.toml").read_text())["limits"]["default"]
    assert profile_limits(bundled_protocol, "a-profile-without-limits") == Limits.from_table(defaults)
    args = build_parser().parse_args(
        ["grade", "x", "--profile", "smoke", "--memory-mb", "5000", "--max-processes", "99"]
    )
    changed = smoke.replace(memory_mb=args.memory_mb, processes=args.max_processes, open_files=args.max_open_files)
    assert (changed.memory_mb, changed.processes, changed.open_files) == (5000, 99, smoke.open_files)
    protocol = tmp_path / "protocol.toml"
    protocol.write_text("[limits.smoke]\nmemory_mb = 1234\n[limits.bad]\nmemory_gb = 1\n")
    assert profile_limits(load_protocol(protocol), "smoke").memory_mb == 1234
    with pytest.raises(ValueError, match="unknown limit"):
        profile_limits(load_protocol(protocol), "bad")


def test_requiring_bubblewrap_where_it_does_not_work_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_available", lambda: False)
    with pytest.raises(SandboxUnavailable):
        wrap(["true"], scratch=_scratch(tmp_path), readable=[], use_bubblewrap=True)
    argv, env, how = wrap(["true"], scratch=_scratch(tmp_path), readable=[], use_bubblewrap=None)
    assert argv == ["true"] and how.startswith("plain process, NO SANDBOX") and "network" in how


@pytest.mark.slow
@pytest.mark.parametrize("portable", [False, True], ids=["posix", "portable-runner"])
def test_without_bubblewrap_the_result_says_so(tmp_path, mnist_arrays, monkeypatch, portable):
    """A real TensorFlow worker, no bubblewrap: trains, and WorkerInfo.sandbox says what is missing.
    `portable-runner` is the runner Windows gets (no process groups, setrlimit or wait4), forced here."""
    if portable:
        monkeypatch.setattr(runner, "POSIX_PROCESS_CONTROL", False)
    from harness.config.protocol import load_protocol
    from harness.training.train import TrainingJob, train_submission

    protocol = load_protocol()
    profile = protocol.profile("smoke").model_copy(update={"train_images": 200})
    data = tmp_path / "train.npz"
    x = mnist_arrays["x_train"][:200].reshape(-1, 28, 28, 1).astype("float32") / 255
    y = np.eye(10, dtype="float32")[mnist_arrays["y_train"][:200]]
    np.savez(data, x_train=x[:160], y_train=y[:160], x_val=x[160:], y_val=y[160:])
    source = textwrap.dedent("""
        import keras
        from keras import layers

        def create_baseline_model():
            model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")])
            model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
            return model
    """)
    job = TrainingJob(
        protocol=protocol,
        profile=profile,
        seed=1,
        train_data=data,
        work_dir=tmp_path / "work",
        limits=profile_limits(load_protocol(), "smoke"),
        use_bubblewrap=False,
    )
    models, worker = train_submission(
        source, [("create_baseline_model", "baseline")], job, tmp_path / "work" / "train", tmp_path / "models"
    )
    assert models[0].status == "ok", models[0].reason
    assert worker.sandbox.startswith("plain process, NO SANDBOX")
    assert "no filesystem or network isolation" in worker.sandbox
    if portable:
        assert "only the deadlines and the output limit" in worker.sandbox
    else:
        assert "limits: address space" in worker.sandbox


def test_the_portable_runner_stops_a_worker_at_its_deadline(tmp_path, monkeypatch):
    """Windows's runner (forced here): a worker past its deadline is killed, its output still read."""
    monkeypatch.setattr(runner, "POSIX_PROCESS_CONTROL", False)
    started = time.monotonic()
    outcome = run_python(
        """
        import time
        print("started", flush=True)
        time.sleep(60)
    """,
        tmp_path,
        bubblewrap=False,
        deadline=1.5,
    )
    assert outcome.stopped_because == "test deadline" and time.monotonic() - started < 20
    assert outcome.returncode != 0 and "started" in outcome.log_tail and outcome.cpu_seconds is None
    finished = run_python('import json; print(json.dumps({"done": True}))', tmp_path, bubblewrap=False)
    assert finished.returncode == 0 and last_json_line(finished) == {"done": True}


def test_a_deadline_passed_at_the_memory_cap_is_out_of_memory():
    """Near its cgroup's cap a worker can stall in reclaim long before the OOM killer fires."""
    stalled = JobOutcome(
        stopped_because="create_improved_model_1() did not return a model within 10 s",
        memory_limit_hit=True,
        limits=Limits(resident_mb=2048),
    )
    status, reason = _describe_death(stalled)
    assert status == "out_of_memory" and "resident-memory limit of 2048 MiB" in reason and "within 10 s" in reason
    status, _ = _describe_death(JobOutcome(stopped_because="… did not return a model within 10 s"))
    assert status == "timeout"


def test_workers_see_the_gpus_the_grader_sees(monkeypatch):
    """CUDA_VISIBLE_DEVICES is passed on only when set: an empty value would hide every GPU."""
    from harness.sandbox.bubblewrap import worker_env

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert worker_env(2)["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the grader hid them: so does the worker
    assert worker_env(2)["CUDA_VISIBLE_DEVICES"] == ""
