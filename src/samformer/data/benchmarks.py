"""The benchmark datasets by name: what each file holds, where to find it, how to download it safely.

A named dataset is looked up, in order, in: an explicit directory (`data_dir`, the CLI's
`--data-dir`), the directory in `$SAMFORMER_DATA`, and the cache directory (`$SAMFORMER_CACHE`, else
`$XDG_CACHE_HOME/samformer`, else `~/.cache/samformer`). Both `NAME.csv` and `NAME.csv.gz` count.
If none holds it and downloading is allowed, it is fetched from its public source (or from
`$SAMFORMER_MIRROR`, a base URL serving the same file names), checked against its SHA-256 and
written atomically into the cache directory.

A file found under a benchmark's own name is checked before use (`check_benchmark_file`): its row
count and column names must be the published ones and, where a canonical file exists, its SHA-256
one of the published copies', since a different file would silently move the 70/10/20 borders. A
file loaded by path (`load_dataset("some/dir/electricity.csv")`) is the user's own series: it is
not checked against any benchmark (tests use this for short synthetic files in a benchmark's layout).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from samformer.errors import DataError
from samformer.files import atomic_destination, require_directory, require_regular_file

if TYPE_CHECKING:
    from samformer.data.series import SplitKind

_ETT = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/1d16c8f4f943005d613b5bc962e9eeb06058cf07/ETT-small/"
_ETT_HEAD = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/"
_WEATHER = "https://raw.githubusercontent.com/Xieyyyy/NEMoTS/2ca29dc7054dd7a171352aeca194aa12019028cf/dataset/weather/"
_EXCHANGE = "https://raw.githubusercontent.com/XiongxiaoXu/SST/54de0639345bfbe5d8c1502581a748f12faa5769/dataset/exchange_rate/"


_ETT_COLUMNS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
_WEATHER_COLUMNS = (
    "p (mbar)", "T (degC)", "Tpot (K)", "Tdew (degC)", "rh (%)", "VPmax (mbar)", "VPact (mbar)", "VPdef (mbar)", "sh (g/kg)",
    "H2OC (mmol/mol)", "rho (g/m**3)", "wv (m/s)", "max. wv (m/s)", "wd (deg)", "rain (mm)", "raining (s)",
    "SWDR (W/m\ufffd)", "PAR (\ufffdmol/m\ufffd/s)", "max. PAR (\ufffdmol/m\ufffd/s)", "Tlog (degC)", "OT",
)  # fmt: skip


def _numbered_columns(n_channels: int) -> tuple[str, ...]:
    """The Time-Series-Library's channel names: '0', '1', ... and the last one 'OT'."""
    return (*(str(i) for i in range(n_channels - 1)), "OT")


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark dataset: its published file and the protocol settings the paper used for it."""

    name: str
    columns: tuple[str, ...]  # the channels after the date column, as published
    n_rows: int  # data rows after the header
    split: SplitKind  # which border rule applies (see `samformer.data.series.split_borders`)
    lr: float  # the paper's learning rate for this dataset
    url: str | None  # public source of the CSV, None where no stable single-file copy exists
    sha256: str | None  # of the uncompressed CSV served at `url` (the canonical file)
    other_sha256: tuple[str, ...] = ()  # other published copies with the same values (e.g. other line ends)

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def n_channels(self) -> int:
        return len(self.columns)

    @property
    def known_sha256(self) -> tuple[str, ...]:
        """The SHA-256 of every accepted copy of the file (empty: no canonical file to compare with)."""
        return (self.sha256, *self.other_sha256) if self.sha256 else ()


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec(
            "ETTh1",
            _ETT_COLUMNS,
            17420,
            "ett_hour",
            1e-3,
            _ETT + "ETTh1.csv",
            "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
        ),
        BenchmarkSpec(
            "ETTh2",
            _ETT_COLUMNS,
            17420,
            "ett_hour",
            1e-3,
            _ETT + "ETTh2.csv",
            "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
        ),
        BenchmarkSpec(
            "ETTm1",
            _ETT_COLUMNS,
            69680,
            "ett_minute",
            1e-3,
            _ETT_HEAD + "ETTm1.csv",
            "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e",
        ),
        BenchmarkSpec(
            "ETTm2",
            _ETT_COLUMNS,
            69680,
            "ett_minute",
            1e-3,
            _ETT_HEAD + "ETTm2.csv",
            "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd",
        ),
        BenchmarkSpec(
            "weather",
            _WEATHER_COLUMNS,
            52696,
            "ratio",
            1e-4,
            _WEATHER + "weather.csv",
            "9b2b19b13e342d9c9b9c51620d42b4be232df7fba30e7f5c4968b7c79ab138ad",
        ),
        BenchmarkSpec("electricity", _numbered_columns(321), 26304, "ratio", 1e-4, None, None),
        BenchmarkSpec("traffic", _numbered_columns(862), 17544, "ratio", 1e-4, None, None),
        BenchmarkSpec(
            "exchange_rate",
            _numbered_columns(8),
            7588,
            "ratio",
            1e-3,
            _EXCHANGE + "exchange_rate.csv",
            "48b4d9d3d508f5104162e85b9a6042e3557fde11aa9f2944eba8c0d0efc89842",  # CRLF line ends
            ("d55e7aa2641009814a18ba3279431b13f6d413b0eab195b9ff21988d8cf94e97",),  # the common LF copy, same text
        ),
    )
}


def is_benchmark_name(source: object) -> bool:
    """Whether `source` names a benchmark (case-insensitive), as opposed to a file path."""
    return isinstance(source, str) and source.lower() in {name.lower() for name in BENCHMARKS}


def get_benchmark(name: str) -> BenchmarkSpec:
    """The spec of a benchmark by its name (case-insensitive)."""
    for key, spec in BENCHMARKS.items():
        if key.lower() == name.lower():
            return spec
    raise DataError(f"unknown dataset {name!r}: use one of {', '.join(BENCHMARKS)} or the path of a CSV file")


def cache_dir() -> Path:
    """Where downloaded datasets are kept."""
    if os.environ.get("SAMFORMER_CACHE"):
        return Path(os.environ["SAMFORMER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "samformer"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for a named dataset, in order."""
    dirs = [require_directory(data_dir, "folder holding the benchmark CSVs (--data-dir)")] if data_dir else []
    if os.environ.get("SAMFORMER_DATA"):
        dirs.append(require_directory(os.environ["SAMFORMER_DATA"], "folder holding the benchmark CSVs ($SAMFORMER_DATA)"))
    dirs.append(cache_dir())
    return dirs


def locate(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The path of benchmark `name`'s CSV (plain or gzipped), downloading it if needed and allowed."""
    spec = get_benchmark(name)
    dirs = search_dirs(data_dir)
    for directory in dirs:
        for candidate in (directory / spec.filename, directory / f"{spec.filename}.gz"):
            if require_regular_file(candidate, f"{spec.name} CSV").is_file():
                return candidate
    where = ", ".join(str(d) for d in dirs)
    if spec.url is None and not os.environ.get("SAMFORMER_MIRROR"):
        raise DataError(
            f"{spec.filename} not found in {where}; it has no stable public single-file copy: get it from the "
            f"Time-Series-Library dataset archive and put it in one of those directories (or pass --data-dir)"
        )
    if not download:
        raise DataError(f"{spec.filename} not found in {where}; put it in one of those directories or allow the download")
    return fetch(spec, cache_dir())


def _source_url(spec: BenchmarkSpec) -> str:
    mirror = os.environ.get("SAMFORMER_MIRROR")
    if mirror:
        return mirror.rstrip("/") + "/" + spec.filename
    assert spec.url is not None
    return spec.url


def fetch(spec: BenchmarkSpec, directory: Path, timeout: float = 30.0) -> Path:
    """Download `spec`'s CSV into `directory`, verify its SHA-256, and move it into place atomically."""
    url = _source_url(spec)
    target = directory / spec.filename
    digest = hashlib.sha256()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_destination(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=f"download {spec.filename}") as bar:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
            if spec.sha256 and digest.hexdigest() != spec.sha256:
                raise DataError(
                    f"download of {spec.filename} from {url} has SHA-256 {digest.hexdigest()}, expected {spec.sha256}; "
                    f"the file was discarded: check the source or put a verified copy in {directory}"
                )
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(
            f"{spec.filename} is not available locally and could not be downloaded from {url} ({exc}); "
            f"put the file in {directory}, in $SAMFORMER_DATA or in --data-dir"
        ) from exc
    return target


def content_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a CSV's content: of the file, or of the CSV inside it for a `.gz`."""
    digest = hashlib.sha256()
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    require_regular_file(path, "CSV file")
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} could not be read ({exc}); check the file, or put a fresh copy in its place") from None
    return digest.hexdigest()


def check_benchmark_file(spec: BenchmarkSpec, path: Path, columns: list[str], n_rows: int, sha256: str) -> None:
    """Refuse a file found under `spec`'s name whose columns, row count or checksum (`sha256`, see
    `content_sha256`) are not the published ones."""
    fix = f"put the published {spec.filename} there, or load the file by its path to use it as your own series"
    if columns != list(spec.columns):
        if len(columns) != len(spec.columns):
            found = f"{len(columns)} channel columns, the {spec.name} benchmark has {len(spec.columns)}"
        else:
            first = next(i for i, (a, b) in enumerate(zip(columns, spec.columns, strict=True)) if a != b)
            found = f"channel column {first + 1} named {columns[first]!r}, the {spec.name} benchmark's is {spec.columns[first]!r}"
        raise DataError(f"{path} has {found}; {fix}")
    if n_rows != spec.n_rows:
        raise DataError(f"{path} has {n_rows} data rows, the {spec.name} benchmark has {spec.n_rows} (its splits depend on them); {fix}")
    if spec.known_sha256 and sha256 not in spec.known_sha256:
        raise DataError(f"{path} has the shape of {spec.filename} but not its content (SHA-256 differs from the published file's); {fix}")
