"""Hostile input on the command line, every command: one line + exit 2, or a documented success; user files untouched.

Table-driven: each case is (argv builder, verdict). A builder gets the case's directory (holding the
user's data.csv, recent.csv, model/, run/ and notes.txt; see tests/hostile.py) and returns argv.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from samformer.cli.main import main
from samformer.cli.options import MAX_DIMENSION, MAX_SEED

from .conftest import make_frame
from .hostile import ROWS, TINY, Refused, Succeeds, check_verdict, make_sources, prepare_user_files, snapshot

Builder = Callable[[Path], list[str]]


def train(*extra: str, data: str = "data.csv") -> Builder:
    return lambda r: ["train", "--dataset", str(r / data), "--horizon", "6", "--out", str(r / "out"), *TINY, *extra]


def fit(*extra: str, data: str = "data.csv") -> Builder:
    return lambda r: ["fit", "--csv", str(r / data), "--horizon", "6", "--out", str(r / "fitted"), *TINY, *extra]


def benchmark(*extra: str) -> Builder:
    return lambda r: ["benchmark", "--datasets", str(r / "data.csv"), "--horizons", "6", "--out", str(r / "bench"), *extra]


def predict(*extra: str, model: str = "model", data: str = "recent.csv") -> Builder:
    return lambda r: ["predict", "--model", str(r / model), "--csv", str(r / data), "--out", str(r / "forecast.csv"), *extra]


def export(*extra: str, model: str = "model") -> Builder:
    return lambda r: ["export-onnx", "--model", str(r / model), "--out", str(r / "m.onnx"), *extra]


def plot(*extra: str, model: str = "model") -> Builder:
    return lambda r: ["plot", "training", "--model", str(r / model), "--out", str(r / "p.png"), *extra]


def with_file(name: str, content: str | bytes, build: Callable[..., Builder], *extra: str, **kw) -> Builder:
    """Write `content` to root/name first, then build the command reading it (`data=name`)."""

    def make(r: Path) -> list[str]:
        path = r / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return build(*extra, data=name, **kw)(r)

    return make


def then(prepare: Callable[[Path], None], build: Builder) -> Builder:
    def make(r: Path) -> list[str]:
        prepare(r)
        return build(r)

    return make


HEADER = "date,a,b\n"


def rows(n: int = ROWS, edit: Callable[[int, str], str] = lambda i, line: line) -> str:
    frame = make_frame(n, 2).reset_index()
    lines = frame.to_csv(index=False).splitlines()
    return "\n".join([lines[0], *(edit(i, line) for i, line in enumerate(lines[1:]))]) + "\n"


def ddmm(i: int, line: str) -> str:
    date, rest = line.split(",", 1)
    day = date[:10]
    return f"{day[8:10]}/{day[5:7]}/{day[:4]}{date[10:]},{rest}"


# --- numeric options: every bound, on every command that has the option ---------------------------
NUMBERS = {
    "--seed": (["18446744073709551616", str(MAX_SEED + 10**6), "-1", "1.5", "0x10", "seed"], r"--seed"),
    "--batch-size": (["100000000000000000000", str(MAX_DIMENSION + 1), "0", "-3", "2.5", "nan"], r"--batch-size"),
    "--value-dim": (["1000000000000", "0", "-16", "1e3"], r"--value-dim"),
    "--seq-len": ([str(MAX_DIMENSION + 1), "0", "1e9"], r"--seq-len"),
    "--epochs": (["10000001", "0", "inf"], r"--epochs"),
    "--patience": (["0", "99999999999"], r"--patience"),
    "--lr": (["inf", "-inf", "nan", "0", "-1e-3", "1e999"], r"--lr"),
    "--rho": (["inf", "-0.1", "nan"], r"--rho"),
    "--weight-decay": (["-1", "inf"], r"--weight-decay"),
    "--threads": (["0", "-2", "10000001", "many"], r"--threads"),
}
DEVICES = ["meta", "mps", "cuda", "cuda:99", "xla", "", "cuda:-1", "cpu\nrm -rf /", "gpu"]

CASES: dict[str, tuple[Builder, Refused | Succeeds]] = {}
for option, (values, pattern) in NUMBERS.items():
    for value in values:
        CASES[f"train {option} {value}"] = (train(f"{option}={value}"), Refused(pattern + r".*(accepted|must|expected|choose)"))
for option in ("--seed", "--batch-size", "--value-dim", "--threads"):
    CASES[f"fit {option} {NUMBERS[option][0][0]}"] = (fit(f"{option}={NUMBERS[option][0][0]}"), Refused(rf"{option}.*accepted"))
for option in ("--batch-size", "--value-dim", "--epochs"):
    CASES[f"benchmark {option} {NUMBERS[option][0][0]}"] = (benchmark(f"{option}={NUMBERS[option][0][0]}"), Refused(rf"{option}"))
CASES["benchmark --seeds huge"] = (benchmark("--seeds", "0,18446744073709551616"), Refused(r"--seeds.*accepted"))
CASES["benchmark --workers 0"] = (benchmark("--workers", "0"), Refused(r"--workers.*positive"))
CASES["predict --threads 0"] = (predict("--threads", "0"), Refused(r"--threads"))
CASES["export --threads huge"] = (export("--threads", "99999999"), Refused(r"--threads"))
for name in DEVICES:
    for command, build in (("train", train), ("fit", fit), ("predict", predict), ("plot", plot)):
        if command in ("fit", "plot") and name not in ("meta", "mps", "cuda:99"):
            continue
        CASES[f"{command} --device {name!r}"] = (build(f"--device={name}"), Refused(r"--device.*(unknown device|not available)"))

# --- data files ------------------------------------------------------------------------------------
BAD_DATA = {
    "row with an extra field": (rows(edit=lambda i, line: line + ",9" if i == 5 else line), r"(could not be parsed|field)"),
    "dd/mm dates": (rows(edit=ddmm), r"(date|unevenly|parse|sorted|frequency)"),
    "1e300 beside small values": (rows(edit=lambda i, line: line.rsplit(",", 1)[0] + ",1e300" if i == 200 else line), r"c1"),
    "1e400 (overflows to inf)": (rows(edit=lambda i, line: line.rsplit(",", 1)[0] + ",1e400" if i == 7 else line), r"infinite"),
    "values all 1e300": (HEADER + "".join(f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00:00,1e300,-1e300\n" for i in range(ROWS)), r"large"),
    "UTF-16": (rows().encode("utf-16"), r"(parsed|not numeric|encoding|date)"),
    "Latin-1 header": ("date,caf\xe9,b\n".encode("latin-1") + rows().split("\n", 1)[1].encode(), r"(parsed|encoding|UTF)"),
    "header only": (HEADER, r"(no data rows|empty|too short|too few)"),
    "empty": ("", r"empty"),
    "a single column, dates only": ("date\n2020-01-01\n2020-01-02\n", r"(no channels|column|too)"),
    "quoted numbers with commas": (HEADER + "".join(f'2020-01-01 {h:02d}:00:00,"1,5",2\n' for h in range(24)), r"(not numeric|too)"),
    "gzip that is not gzip": (b"\x1f\x8bgarbage", r"(could not be parsed|compressed|gzip|not numeric|CRC|encoding|invalid)"),
    "very long field": (HEADER + "2020-01-01 00:00:00," + "9" * 5000 + ",1\n", r"(large|infinite|too short|too few|not numeric)"),
    "dates with mixed time zones": (
        HEADER + "".join(f"2020-01-01 {h:02d}:00:00{'+01:00' if h % 2 else '+00:00'},{h},{h}\n" for h in range(24)),
        r"(date|time|zone|sorted|evenly|too short|too few|UTC)",
    ),
}
# Legal CSVs whose labels are odd: trained on as given (labels quoted and escaped wherever printed).
ODD_LABELS = {
    "newline in a column name": 'date,"a\nb",c\n' + rows().split("\n", 1)[1],
    "carriage return in a column name": 'date,"a\rb",c\n' + rows().split("\n", 1)[1],
    "NUL byte in a column name": "date,a\x00,b\n" + rows().split("\n", 1)[1],
    "duplicate column names (pandas makes them a, a.1)": "date,a,a\n" + rows().split("\n", 1)[1],
}
TRAINED = Succeeds(lambda r: (r / "out" / "result.json").is_file())
FITTED = Succeeds(lambda r: (r / "fitted" / "config.json").is_file())
for case, content in ODD_LABELS.items():
    CASES[f"train: {case} (documented success)"] = (with_file("odd.csv", content, train), TRAINED)
    CASES[f"fit: {case} (documented success)"] = (with_file("odd.csv", content, fit), FITTED)
for case, (content, pattern) in BAD_DATA.items():
    suffix = ".csv.gz" if "gzip" in case else ".csv"
    CASES[f"train: {case}"] = (with_file(f"hostile{suffix}", content, train), Refused(pattern))
    CASES[f"fit: {case}"] = (with_file(f"hostile{suffix}", content, fit), Refused(pattern))


def fifo(r: Path) -> None:
    os.mkfifo(r / "pipe.csv")


def loop(r: Path) -> None:
    (r / "loop.csv").symlink_to(r / "loop.csv")


CASES |= {
    "train: FIFO as data": (then(fifo, train(data="pipe.csv")), Refused(r"(no such file|not a regular file|pipe)")),
    "fit: FIFO as data": (then(fifo, fit(data="pipe.csv")), Refused(r"(no such file|not a regular file|pipe)")),
    "train: symlink loop": (then(loop, train(data="loop.csv")), Refused(r"(no such file|loop|symbolic)")),
    "fit: symlink loop": (then(loop, fit(data="loop.csv")), Refused(r"(no such file|loop|symbolic)")),
    "predict: FIFO as history": (then(fifo, predict(data="pipe.csv")), Refused(r"(no such file|not a regular file)")),
    "train: a directory as data": (train(data="model"), Refused(r"is a directory, not a regular file; pass the path of the CSV")),
    "fit: a directory as data": (fit(data="model"), Refused(r"is a directory, not a regular file; pass the path of the CSV")),
    "train: /dev/null": (lambda r: [*train()(r)[:2], "/dev/null", *train()(r)[3:]], Refused(r"'/dev/null' is a character device")),
}

# --- paths: newlines, outputs that cannot be written, outputs that exist ------------------------------


def newline_csv(r: Path) -> None:
    make_frame(ROWS, 2).to_csv(r / "new\nline.csv")


CASES |= {
    "train: newline in the data path, missing": (train(data="no\nsuch.csv"), Refused(r"no\\nsuch")),
    "fit: newline in the data path, missing": (fit(data="no\nsuch.csv"), Refused(r"no\\nsuch")),
    "predict: newline in the model path": (predict(model="no\nmodel"), Refused(r"no\\nmodel")),
    "train: newline in the data path, present (documented success)": (
        then(newline_csv, train(data="new\nline.csv")),
        Succeeds(lambda r: (r / "out" / "model.safetensors").is_file()),
    ),
    "train: newline in --out (documented success)": (
        lambda r: [*train()(r)[: -len(TINY) - 2], "--out", str(r / "o\nut"), *TINY],
        Succeeds(lambda r: (r / "o\nut" / "result.json").is_file()),
    ),
    "train: --out is the user's notes file": (lambda r: [*train()(r), "--out", str(r / "notes.txt")], Refused(r"cannot write to")),
    "train: --out under the notes file": (lambda r: [*train()(r), "--out", str(r / "notes.txt" / "o")], Refused(r"not a writable")),
    "train: --out holds a finished run": (lambda r: [*train()(r), "--out", str(r / "run")], Refused(r"already holds a model")),
    "train: --out is the fitted model": (lambda r: [*train()(r), "--out", str(r / "model")], Refused(r"already holds a model")),
    "train: --resume of a finished run (documented success)": (
        lambda r: [*train()(r), "--out", str(r / "run"), "--resume"],
        Succeeds(),
    ),
    "fit: --out is the notes file": (lambda r: [*fit()(r), "--out", str(r / "notes.txt")], Refused(r"not a directory")),
    "fit: --out holds a model": (lambda r: [*fit()(r), "--out", str(r / "model")], Refused(r"not empty.*--overwrite")),
    "fit: --overwrite of a training run with a result.json": (
        lambda r: [*fit()(r), "--out", str(r / "run"), "--overwrite"],
        Refused(r"files other than a saved model"),
    ),
    "fit: --log-dir is a file": (lambda r: [*fit()(r), "--log-dir", str(r / "notes.txt")], Refused(r"notes\.txt")),
    "predict: --out is a directory, --overwrite": (
        lambda r: [*predict()(r), "--out", str(r / "run"), "--overwrite"],
        Refused(r"directory"),
    ),
    "predict: --out exists": (lambda r: [*predict()(r), "--out", str(r / "notes.txt")], Refused(r"already exists")),
    "predict: --out in a missing directory": (lambda r: [*predict()(r), "--out", str(r / "no" / "f.csv")], Refused(r"does not exist")),
    "export: --out exists": (lambda r: [*export()(r), "--out", str(r / "notes.txt")], Refused(r"already exists")),
    "plot: --out is a directory": (lambda r: [*plot()(r), "--out", str(r / "model"), "--overwrite"], Refused(r"directory")),
    "benchmark: --out is a file": (lambda r: [*benchmark()(r), "--out", str(r / "notes.txt")], Refused(r"cannot write to")),
    "benchmark: unknown dataset name": (lambda r: ["benchmark", "--datasets", "ETTh9", "--out", str(r / "b")], Refused(r"unknown")),
    "table: not a directory": (lambda r: ["table", str(r / "notes.txt")], Refused(r"not a directory")),
    "table: no run files": (lambda r: ["table", str(r / "model")], Refused(r"no run files")),
    "sweep: --out is a file (or Ray missing)": (
        lambda r: ["sweep", "--datasets", str(r / "data.csv"), "--out", str(r / "notes.txt")],
        Refused(r"(cannot write to|Ray|ray)"),
    ),
    "study sharpness: --out under a file": (
        lambda r: ["study", "sharpness", "--dataset", str(r / "data.csv"), "--horizon", "6", "--out", str(r / "notes.txt" / "s")],
        Refused(r"(cannot write to|cannot create).*choose a writable --out"),
    ),
    "study sharpness: seed out of range": (
        lambda r: ["study", "sharpness", "--dataset", "x.csv", "--horizon", "6", "--seed", "-5"],
        Refused(r"--seed.*accepted"),
    ),
}

# --- model directories --------------------------------------------------------------------------------


def edit_model(change: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda r: change(r / "model")


def rewrite_config(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def change(d: Path) -> None:
        config = json.loads((d / "config.json").read_text())
        edit(config)
        (d / "config.json").write_text(json.dumps(config))

    return change


def deep_config(d: Path) -> None:
    (d / "config.json").write_text("[" * 200000 + "]" * 200000)


def dims(value: int) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        for section in config.values():
            if isinstance(section, dict) and "seq_len" in section:
                section["seq_len"] = section["horizon"] = value

    return edit


MODEL_DAMAGE = {
    "deeply nested config": (deep_config, r"nests JSON"),
    "config is not JSON": (lambda d: (d / "config.json").write_text("{oops"), r"(not valid JSON|changed|config)"),
    "config is binary": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe\x00"), r"(not valid JSON|UTF|config)"),
    "config is a directory": (lambda d: ((d / "config.json").unlink(), (d / "config.json").mkdir()), r"config"),
    "weights missing": (lambda d: (d / "model.safetensors").unlink(), r"(missing|model\.safetensors)"),
    "weights are empty": (lambda d: (d / "model.safetensors").write_bytes(b""), r"(changed after saving|safetensors)"),
    "weights are a directory": (lambda d: ((d / "model.safetensors").unlink(), (d / "model.safetensors").mkdir()), r"safetensors"),
    "config declares 2**21 dimensions": (rewrite_config(dims(2**21)), r"(at most|changed after saving)"),
    "config declares 30000 steps": (rewrite_config(dims(30000)), r"changed after saving"),
    "config emptied": (lambda d: (d / "config.json").write_text("{}"), r"(config|format|missing)"),
    "config is a JSON list": (lambda d: (d / "config.json").write_text("[1, 2]"), r"(config|format)"),
    "config has a newline in a key": (rewrite_config(lambda c: c.update({"x\ny": 1})), r"changed after saving"),
}
for case, (change, pattern) in MODEL_DAMAGE.items():
    CASES[f"predict: {case}"] = (then(edit_model(change), predict()), Refused(pattern))
    CASES[f"export: {case}"] = (then(edit_model(change), export()), Refused(pattern))

# --- training runs ----------------------------------------------------------------------------------


def planted(name: str, content: bytes) -> Callable[[Path], None]:
    def plant(r: Path) -> None:
        (r / "out").mkdir(exist_ok=True)
        (r / "out" / name).write_bytes(content)

    return plant


def linked_directory(r: Path) -> None:
    (r / "target").mkdir()
    (r / "link").symlink_to(r / "target", target_is_directory=True)


CASES |= {
    "train --resume: checkpoint of zeros": (
        then(planted("checkpoint.safetensors", bytes(64)), train("--resume")),
        Refused(r"not a readable samformer checkpoint"),
    ),
    "train --resume: checkpoint header claims 2**60 bytes": (
        then(planted("checkpoint.safetensors", (2**60).to_bytes(8, "little") + b"{}"), train("--resume")),
        Refused(r"not a readable samformer checkpoint"),
    ),
    "train --resume: deeply nested checkpoint header": (
        then(planted("checkpoint.safetensors", (400000).to_bytes(8, "little") + b"[" * 200000 + b"]" * 200000), train("--resume")),
        Refused(r"not a readable samformer checkpoint"),
    ),
    "train: a stale temporary is cleaned (documented success)": (
        then(planted(".checkpoint.safetensors.abc.tmp", b"partial"), train()),
        Succeeds(
            lambda r: sorted(p.name for p in (r / "out").iterdir()) == ["config.json", "model.safetensors", "result.json"],
            cleaned=("out/.checkpoint.safetensors.abc.tmp",),
        ),
    ),
    "train: --out keeps the user's other files (documented success)": (
        then(planted("mine.txt", b"keep me"), train()),
        Succeeds(lambda r: (r / "out" / "mine.txt").read_bytes() == b"keep me" and (r / "out" / "model.safetensors").is_file()),
    ),
    "train: --out is a symlink to a directory (documented success: the run lands there, the link stays)": (
        then(linked_directory, lambda r: [*train()(r), "--out", str(r / "link")]),
        Succeeds(lambda r: (r / "link").is_symlink() and (r / "target" / "model.safetensors").is_file()),
    ),
    "train: CRLF line endings (documented success)": (
        with_file("crlf.csv", rows().replace("\n", "\r\n"), train),
        Succeeds(lambda r: (r / "out" / "result.json").is_file()),
    ),
    "train: gzip CSV (documented success)": (
        with_file("data2.csv.gz", gzip.compress(rows().encode()), train),
        Succeeds(lambda r: (r / "out" / "result.json").is_file()),
    ),
    "train: NaN loss": (train("--lr", "1e30", "--no-sam"), Refused(r"training loss became (nan|inf)")),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return make_sources(tmp_path_factory.mktemp("sources"))


@pytest.mark.parametrize("case", CASES)
def test_hostile_cli_input(capsys, tmp_path, monkeypatch, sources, case):
    build, expect = CASES[case]
    root = tmp_path / "user"
    root.mkdir()
    prepare_user_files(root, sources)
    monkeypatch.chdir(root)  # a default --out would land here and show in the snapshot
    argv = build(root)
    before = snapshot(root)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    check_verdict(expect, code, out, err, root, before)
