"""The benchmark datasets by name: where to find them, and how to download them safely.

A named dataset is looked up, in order, in: an explicit directory (`data_dir`, the CLI's
`--data-dir`), the directory in `$SAMFORMER_DATA`, and the cache directory (`$SAMFORMER_CACHE`, else
`$XDG_CACHE_HOME/samformer`, else `~/.cache/samformer`). Both `NAME.csv` and `NAME.csv.gz` count.
If none holds it and downloading is allowed, it is fetched from its public source (or from
`$SAMFORMER_MIRROR`, a base URL serving the same file names), checked against its SHA-256 and
written atomically into the cache directory.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from samformer.errors import DataError
from samformer.files import atomic_destination

SplitKind = Literal["ett_hour", "ett_minute", "ratio"]

_ETT = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/1d16c8f4f943005d613b5bc962e9eeb06058cf07/ETT-small/"
_ETT_HEAD = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/"
_WEATHER = "https://raw.githubusercontent.com/Xieyyyy/NEMoTS/2ca29dc7054dd7a171352aeca194aa12019028cf/dataset/weather/"
_EXCHANGE = "https://raw.githubusercontent.com/XiongxiaoXu/SST/54de0639345bfbe5d8c1502581a748f12faa5769/dataset/exchange_rate/"


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark dataset and the protocol settings the paper used for it."""

    name: str
    n_channels: int
    n_rows: int
    split: SplitKind  # which border rule applies (see `samformer.data.split_borders`)
    lr: float  # the paper's learning rate for this dataset
    url: str | None  # public source of the CSV, None where no stable single-file copy exists
    sha256: str | None  # of the uncompressed CSV served at `url`

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec(
            "ETTh1", 7, 17420, "ett_hour", 1e-3, _ETT + "ETTh1.csv", "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"
        ),
        BenchmarkSpec(
            "ETTh2", 7, 17420, "ett_hour", 1e-3, _ETT + "ETTh2.csv", "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"
        ),
        BenchmarkSpec(
            "ETTm1",
            7,
            69680,
            "ett_minute",
            1e-3,
            _ETT_HEAD + "ETTm1.csv",
            "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e",
        ),
        BenchmarkSpec(
            "ETTm2",
            7,
            69680,
            "ett_minute",
            1e-3,
            _ETT_HEAD + "ETTm2.csv",
            "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd",
        ),
        BenchmarkSpec(
            "weather",
            21,
            52696,
            "ratio",
            1e-4,
            _WEATHER + "weather.csv",
            "9b2b19b13e342d9c9b9c51620d42b4be232df7fba30e7f5c4968b7c79ab138ad",
        ),
        BenchmarkSpec("electricity", 321, 26304, "ratio", 1e-4, None, None),
        BenchmarkSpec("traffic", 862, 17544, "ratio", 1e-4, None, None),
        BenchmarkSpec(
            "exchange_rate",
            8,
            7588,
            "ratio",
            1e-3,
            _EXCHANGE + "exchange_rate.csv",
            "48b4d9d3d508f5104162e85b9a6042e3557fde11aa9f2944eba8c0d0efc89842",
        ),
    )
}


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
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("SAMFORMER_DATA"):
        dirs.append(Path(os.environ["SAMFORMER_DATA"]))
    dirs.append(cache_dir())
    return dirs


def locate(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The path of benchmark `name`'s CSV (plain or gzipped), downloading it if needed and allowed."""
    spec = get_benchmark(name)
    dirs = search_dirs(data_dir)
    for directory in dirs:
        for candidate in (directory / spec.filename, directory / f"{spec.filename}.gz"):
            if candidate.is_file():
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
