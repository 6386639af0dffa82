"""Finding and downloading named benchmarks, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest

from samformer import DataError
from samformer.data.benchmarks import locate


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No data dir, an empty cache, no mirror."""
    monkeypatch.delenv("SAMFORMER_DATA", raising=False)
    monkeypatch.delenv("SAMFORMER_MIRROR", raising=False)
    monkeypatch.setenv("SAMFORMER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def http_dir(tmp_path):
    """Serve a directory on 127.0.0.1; yields (directory, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_from_mirror_is_verified_and_cached(data_dir, isolated, http_dir, monkeypatch):
    root, url = http_dir
    shutil.copy(data_dir / "ETTh1.csv", root / "ETTh1.csv")
    monkeypatch.setenv("SAMFORMER_MIRROR", url)
    path = locate("ETTh1")
    assert path == isolated / "ETTh1.csv"
    assert path.read_bytes() == (data_dir / "ETTh1.csv").read_bytes()
    (root / "ETTh1.csv").unlink()  # the second lookup must come from the cache, not the server
    assert locate("etth1") == path


def test_a_corrupted_download_is_refused_and_leaves_nothing(data_dir, isolated, http_dir, monkeypatch):
    root, url = http_dir
    content = bytearray((data_dir / "ETTh1.csv").read_bytes())
    content[-10] = ord("9") if content[-10] != ord("9") else ord("8")
    (root / "ETTh1.csv").write_bytes(bytes(content))
    monkeypatch.setenv("SAMFORMER_MIRROR", url)
    with pytest.raises(DataError, match="SHA-256"):
        locate("ETTh1")
    assert not isolated.exists() or list(isolated.iterdir()) == []


def test_offline_error_says_what_is_missing_and_where(isolated, monkeypatch):
    monkeypatch.setenv("SAMFORMER_MIRROR", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(DataError, match=r"ETTh2\.csv is not available locally.*put the file in"):
        locate("ETTh2")
    with pytest.raises(DataError, match="ETTh2.csv not found"):
        locate("ETTh2", download=False)


def test_electricity_without_a_source_explains_where_to_put_it(isolated):
    with pytest.raises(DataError, match="electricity.csv not found.*put it in"):
        locate("electricity")


def test_lookup_order_prefers_explicit_dir_over_env(tmp_path, isolated, monkeypatch, data_dir):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    explicit.mkdir()
    env.mkdir()
    (explicit / "ETTh1.csv").write_text("x")
    (env / "ETTh1.csv.gz").write_text("y")
    monkeypatch.setenv("SAMFORMER_DATA", str(env))
    assert locate("ETTh1", data_dir=explicit) == explicit / "ETTh1.csv"
    assert locate("ETTh1") == env / "ETTh1.csv.gz"


def test_unknown_dataset_lists_the_names(isolated):
    with pytest.raises(DataError, match="unknown dataset 'ETTh3'.*ETTh1, ETTh2"):
        locate("ETTh3")


def test_no_partial_file_is_left_when_the_server_fails(isolated, http_dir, monkeypatch):
    _, url = http_dir  # serves nothing: 404
    monkeypatch.setenv("SAMFORMER_MIRROR", url)
    with pytest.raises(DataError, match="could not be downloaded"):
        locate("ETTh1")
    assert not any(Path(isolated).glob("*")) if isolated.exists() else True
