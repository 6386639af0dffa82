"""Hostile faults: a full disk, a read-only file system, permission denied, concurrent writers, kills, interrupts,
failures raised from deep inside a command. Each: one line + exit 2 (130 for an interrupt), or a documented
success, and no file the user had changed or lost.

The full disk and the read-only file system are small tmpfs mounts: those cases skip where this process
may not mount. Permission cases run as 'nobody' (seteuid) when the tests run as root, who ignores modes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from safetensors import SafetensorError

import samformer.cli.main as cli
import samformer.cli.train as train_command
from samformer.cli.main import main
from samformer.files import exclusive_lock, lock_path
from samformer.forecasting.modelfile import load_model
from tests.helpers import run_cli

from .hostile import TINY, Refused, check_verdict, make_sources, prepare_user_files, snapshot

NOBODY = 65534
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return make_sources(tmp_path_factory.mktemp("sources"))


# --- tmpfs: a full disk and a read-only file system ---------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path, leave: int = 2048) -> None:
    """Fill the file system of `directory` up to `leave` free bytes."""
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    with open(directory / ".filler", "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave))


def read_only(directory: Path) -> None:
    if subprocess.run(["mount", "-o", "remount,ro", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("cannot remount read-only here")


# Each fault case: argv on (sources, mount) -> verdict. The user's files sit on the mount beside the output.
def on_mount(*argv: str | Callable[[Path, Path], str]) -> Callable[[Path, Path], list[str]]:
    return lambda src, mnt: [a(src, mnt) if callable(a) else a for a in argv]


def s(name: str) -> Callable[[Path, Path], str]:
    return lambda src, mnt: str(src / name)


def m(name: str) -> Callable[[Path, Path], str]:
    return lambda src, mnt: str(mnt / name)


DISK_FULL = Refused(r"(No space left on device|Disk quota).*(free some space|choose)")
READ_ONLY = Refused(r"(Read-only file system|not a writable directory|cannot write)")
OUTPUTS = {
    "train --out": on_mount("train", "--dataset", s("data.csv"), "--horizon", "6", "--out", m("out"), *TINY),
    "train --overwrite of a run": on_mount("train", "--dataset", s("data.csv"), "--horizon", "6", "--out", m("run"), "--overwrite", *TINY),
    "fit --out": on_mount("fit", "--csv", s("data.csv"), "--horizon", "6", "--out", m("fitted"), *TINY),
    "fit --overwrite of a model": on_mount("fit", "--csv", s("data.csv"), "--horizon", "6", "--out", m("model"), "--overwrite", *TINY),
    "predict --out": on_mount("predict", "--model", s("model"), "--csv", s("recent.csv"), "--out", m("forecast.csv")),
    "plot --out": on_mount("plot", "training", "--model", s("model"), "--out", m("p.png")),
    "export-onnx --out": on_mount("export-onnx", "--model", s("model"), "--out", m("m.onnx")),
    "benchmark --out": on_mount(
        "benchmark", "--datasets", s("data.csv"), "--horizons", "6", "--seq-len", "24", "--out", m("bench"), "--epochs", "1"
    ),
}


def _onnx_missing(case: str) -> bool:
    if "onnx" not in case:
        return False
    try:
        import onnx  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.mark.parametrize("kind", ["full disk", "read-only"])
@pytest.mark.parametrize("case", list(OUTPUTS))
def test_outputs_on_a_full_or_read_only_file_system(capsys, tmp_path, sources, kind, case):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        prepare_user_files(mnt, sources)
        if kind == "full disk":
            fill(mnt)
        else:
            read_only(mnt)
        before = snapshot(mnt)
        code, out, err = run_cli(capsys, *OUTPUTS[case](sources, mnt))
        if _onnx_missing(case):
            check_verdict(Refused(r"onnx"), code, out, err, mnt, before)
        else:
            check_verdict(DISK_FULL if kind == "full disk" else READ_ONLY, code, out, err, mnt, before)
        assert not [p for p in mnt.rglob("*") if p.name.endswith((".tmp", ".old", ".lock"))]
        if "overwrite" in case:
            load_model(mnt / ("run" if "run" in case else "model"))  # the old model is intact and loads


# --- permission denied (as a user without rights, also when the tests run as root) --------------------


@contextlib.contextmanager
def without_rights() -> Iterator[None]:
    """Run the block as 'nobody' when we are root (root ignores file modes); as ourselves otherwise."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def chmod(mode: int, *names: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        for name in names:
            (root / name).chmod(mode)

    return change


PERMISSIONS = {
    "train: data chmod 000": (chmod(0o000, "data.csv"), ["train", "--dataset", "{r}/data.csv", "--horizon", "6", "--out", "{r}/o"]),
    "fit: data chmod 000": (chmod(0o000, "data.csv"), ["fit", "--csv", "{r}/data.csv", "--horizon", "6", "--out", "{r}/o"]),
    "predict: history chmod 000": (
        chmod(0o000, "recent.csv"),
        ["predict", "--model", "{r}/model", "--csv", "{r}/recent.csv", "--out", "{r}/f.csv"],
    ),
    "predict: config chmod 000": (
        chmod(0o000, "model/config.json"),
        ["predict", "--model", "{r}/model", "--csv", "{r}/recent.csv", "--out", "{r}/f.csv"],
    ),
    "predict: weights chmod 000": (
        chmod(0o000, "model/model.safetensors"),
        ["predict", "--model", "{r}/model", "--csv", "{r}/recent.csv", "--out", "{r}/f.csv"],
    ),
    "export: model directory chmod 000": (chmod(0o000, "model"), ["export-onnx", "--model", "{r}/model", "--out", "{r}/m.onnx"]),
    "train: --out directory chmod 555": (
        chmod(0o555, "run"),
        ["train", "--dataset", "{r}/data.csv", "--horizon", "6", "--out", "{r}/run/sub"],
    ),
    "train --resume: run directory chmod 555": (
        chmod(0o555, "run"),
        ["train", "--dataset", "{r}/data.csv", "--horizon", "6", "--out", "{r}/run", "--overwrite"],
    ),
    "fit: parent of --out chmod 555": (chmod(0o555, "run"), ["fit", "--csv", "{r}/data.csv", "--horizon", "6", "--out", "{r}/run/m"]),
    "predict: --out directory chmod 555": (
        chmod(0o555, "run"),
        ["predict", "--model", "{r}/model", "--csv", "{r}/recent.csv", "--out", "{r}/run/f.csv"],
    ),
    "benchmark: --out chmod 555": (
        chmod(0o555, "run"),
        ["benchmark", "--datasets", "{r}/data.csv", "--horizons", "6", "--out", "{r}/run/b"],
    ),
    "table: run files chmod 000": (chmod(0o000, "run"), ["table", "{r}/run"]),
}


@pytest.mark.parametrize("case", list(PERMISSIONS))
def test_permission_denied_is_one_line(capsys, sources, case):
    root = Path(tempfile.mkdtemp(prefix="samformer-perm-"))  # outside pytest's 0700 tree, so 'nobody' can enter
    try:
        root.chmod(0o777)
        prepare_user_files(root, sources)
        for path in root.rglob("*"):
            path.chmod(0o777 if path.is_dir() else 0o666)
        change, argv = PERMISSIONS[case]
        change(root)
        argv = [a.replace("{r}", str(root)) for a in argv]
        if argv[0] in ("train", "fit"):
            argv += TINY
        before = snapshot(root)
        with without_rights():
            capsys.readouterr()
            code = main(argv)
        out, err = capsys.readouterr()
        pattern = r"(Permission denied|not a writable directory|cannot write|no run files|no such)"
        check_verdict(Refused(pattern), code, out, err, root, before)
    finally:
        for path in [root, *root.rglob("*")]:
            with contextlib.suppress(OSError):
                path.chmod(0o777)
        shutil.rmtree(root, ignore_errors=True)


# --- concurrent writers -------------------------------------------------------------------------------


def test_a_train_into_an_out_another_process_is_writing_is_refused(capsys, tmp_path, sources):
    prepare_user_files(tmp_path, sources)
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time; from samformer.files import exclusive_lock\nwith exclusive_lock({str(out)!r}):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = lock_path(out)
        before[str(lock.relative_to(tmp_path))] = snapshot(tmp_path)[str(lock.relative_to(tmp_path))]
        code, stdout, err = run_cli(capsys, *["train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6", "--out", str(out), *TINY])
        check_verdict(Refused(r"another samformer process is writing to .*wait for it"), code, stdout, err, tmp_path, before)
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_exclusive_released_and_leaves_no_file(tmp_path):
    target = tmp_path / "out"
    with exclusive_lock(target) as path:
        assert path.exists()
        with pytest.raises(Exception, match="another samformer process"), exclusive_lock(target):
            pass
    assert not lock_path(target).exists()
    with exclusive_lock(target):  # free again
        pass


def test_two_trains_into_one_out_never_mix(tmp_path, sources):
    prepare_user_files(tmp_path, sources)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "samformer", "train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6", "--out", str(out)]
    procs = [
        subprocess.Popen([*argv, *TINY, "--seed", str(seed)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (1, 2)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser_err = next(err for code, _, err in results if code == 2)
    assert len(loser_err.strip().splitlines()) == 1 and ("another samformer process" in loser_err or "already holds" in loser_err)
    winner = json.loads(next(out_ for code, out_, _ in results if code == 0).strip().splitlines()[-1])
    assert json.loads((out / "result.json").read_text())["seed"] == winner["seed"]
    load_model(out)  # weights and config of one and the same run (checksums verified)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "result.json"]


# --- kills and interrupts -----------------------------------------------------------------------------


def test_sigkill_leaves_only_our_own_temporaries_and_resume_cleans_them(tmp_path, sources):
    prepare_user_files(tmp_path, sources)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "samformer", "train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6", "--out", str(out)]
    options = ["--seq-len", "24", "--epochs", "30", "--patience", "30", "--batch-size", "8", "--quiet"]
    proc = subprocess.Popen([*argv, *options], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.safetensors").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    leftovers = [p.name for p in [*out.glob("*"), *out.glob(".*"), *tmp_path.glob(".out*")]]
    assert all(
        name in ("checkpoint.safetensors", "model.safetensors", "config.json", "result.json", ".out.lock")
        or name.startswith((".checkpoint.safetensors.", ".out."))
        for name in leftovers
    ), leftovers
    (out.parent / ".out.abc.tmp").mkdir(exist_ok=True)  # as a kill during the final rename would leave it
    resumed = subprocess.run([*argv, *options, "--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 or "already holds" in resumed.stderr, resumed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "result.json"]
    assert not list(tmp_path.glob(".out.*"))


def test_ctrl_c_during_training_is_130_in_one_line(tmp_path, sources):
    prepare_user_files(tmp_path, sources)
    argv = [sys.executable, "-m", "samformer", "train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6"]
    options = ["--out", str(tmp_path / "out"), "--seq-len", "24", "--epochs", "50", "--patience", "50", "--batch-size", "8", "--quiet"]
    proc = subprocess.Popen(
        [*argv, *options],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell's background job inherits SIGINT ignored
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "checkpoint.safetensors").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "samformer: interrupted", err


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_start_up_is_130_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_command_modules", interrupt)
    monkeypatch.setattr(sys, "argv", ["samformer", "train", "--help"])
    with pytest.raises(SystemExit) as exit_:
        cli.run()
    assert exit_.value.code == 130 and capsys.readouterr().err == "samformer: interrupted\n"


RAISED = {
    "KeyboardInterrupt in training": (KeyboardInterrupt(), Refused(r"^samformer: interrupted$", code=130)),
    "MemoryError": (MemoryError(), Refused(r"out of memory; use a smaller --batch-size")),
    "torch's CPU allocator": (RuntimeError("DefaultCPUAllocator: can't allocate memory: 10**12 bytes"), Refused(r"out of memory")),
    "SafetensorError": (SafetensorError("Error while serializing: IoError(No space)"), Refused(r"safetensors file could not be")),
    "RecursionError": (RecursionError("maximum recursion depth exceeded"), Refused(r"nested too deeply")),
    "OSError ENOSPC": (OSError(errno.ENOSPC, "No space left on device", "/x/model.safetensors"), DISK_FULL),
    "OSError EROFS": (OSError(errno.EROFS, "Read-only file system", "/x"), Refused(r"read-only")),
    "OSError EACCES with newline in the name": (
        OSError(errno.EACCES, "Permission denied", "/x/a\nb.csv"),
        Refused(r"'/x/a\\nb.csv' \(Permission denied\)"),
    ),
    "OSError without errno": (OSError("something odd"), Refused(r"cannot use a file \(something odd\)")),
    "FloatingPointError": (FloatingPointError("training loss became nan in epoch 1; lower --lr"), Refused(r"lower --lr")),
    "EOFError from a truncated .gz": (EOFError("Compressed file ended"), Refused(r"truncated or corrupt")),
    "a message with escape codes": (train_command.SamformerError("bad \x1b[31mred\x1b[0m\r\nname"), Refused(r"\\x1b\[31m.*\\r\\n")),
}


@pytest.mark.parametrize("case", list(RAISED))
def test_failures_from_inside_a_command_are_one_line(capsys, tmp_path, sources, monkeypatch, case):
    exc, expect = RAISED[case]
    prepare_user_files(tmp_path, sources)

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(train_command, "execute", fail)
    before = snapshot(tmp_path)
    argv = ["train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6", "--out", str(tmp_path / "run"), "--overwrite", *TINY]
    code, out, err = run_cli(capsys, *argv)
    check_verdict(expect, code, out, err, tmp_path, before)


def test_a_bug_keeps_its_traceback(capsys, tmp_path, sources, monkeypatch):
    monkeypatch.setattr(train_command, "execute", lambda *a, **k: (_ for _ in ()).throw(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        main(["train", "--dataset", str(sources / "data.csv"), "--horizon", "6", "--out", str(tmp_path / "o"), *TINY])


def test_a_failing_final_write_leaves_the_previous_run_whole(capsys, tmp_path, sources, monkeypatch):
    prepare_user_files(tmp_path, sources)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_command, "write_json", full_disk)
    before = snapshot(tmp_path)
    argv = ["train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6", "--out", str(tmp_path / "run"), "--overwrite", *TINY]
    code, out, err = run_cli(capsys, *argv)
    check_verdict(Refused(DISK_FULL.pattern), code, out, err, tmp_path, before)
    load_model(tmp_path / "run")  # the previous run, whole: the new run checkpointed outside it


def test_identical_runs_write_identical_files(capsys, tmp_path, sources):
    argv = ["train", "--dataset", str(sources / "data.csv"), "--horizon", "6", *TINY]
    for name in ("a", "b"):
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_threads_option_sets_torchs_threads(capsys, tmp_path, sources):
    import torch

    threads = torch.get_num_threads()
    try:
        code, _, _ = run_cli(
            capsys,
            *["train", "--dataset", str(sources / "data.csv"), "--horizon", "6", "--out", str(tmp_path / "o"), "--threads", "1", *TINY],
        )
        assert code == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_a_busy_machine_gets_one_thread_and_says_so_in_one_line(capsys, tmp_path, sources, monkeypatch):
    import torch

    import samformer.threads as threads_module

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "available_cores", lambda: 4)
    monkeypatch.setattr(threads_module, "load_average", lambda: 9.0)
    threads = torch.get_num_threads()
    try:
        code = main(["export-onnx", "--model", str(sources / "model"), "--out", str(tmp_path / "m.onnx")], adapt_to_load=True)
        err = capsys.readouterr().err
        assert torch.get_num_threads() == 1
        assert err.splitlines()[0] == (
            "samformer: note: the machine is busy (load average 9.0 on 4 cores): using 1 thread per process instead of 4; "
            "choose with --threads N or OMP_NUM_THREADS"
        )
        assert code in (0, 2)  # 2 where onnx is not installed: the note comes first either way
    finally:
        torch.set_num_threads(threads)
