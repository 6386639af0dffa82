"""The benchmark grid (resume after SIGKILL, corrupt files) and the table (hand-computed cells)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from samformer.cli.main import main
from samformer.errors import SamformerError
from samformer.experiments.grid import grid, run_grid
from samformer.experiments.scheduler import expected_cost, longest_first, stacks
from samformer.experiments.store import pending, run_path
from samformer.experiments.tables import render_table, summarise, summarise_tuned
from samformer.files import exclusive_lock

from .records import assert_same_record

TINY = {"epochs": 2, "batch_size": 64, "progress": False}
METRICS = ("test_mse", "test_mae", "val_mse", "best_epoch", "epochs_run")


def tiny_specs(csv: Path):
    return grid([str(csv)], [6, 12], [0, 1], ["samformer"], seq_len=24, train_options=TINY)


def metrics_of(out: Path, specs) -> list[tuple]:
    return [tuple(json.loads(run_path(out, s).read_text())[k] for k in METRICS) for s in specs]


def test_killed_grid_resumes_to_the_same_results(tmp_path, small_csv):
    specs = tiny_specs(small_csv)
    straight = tmp_path / "straight"
    run_grid(specs, straight, progress=False, threads=1)  # bit-identical results need one thread count on both sides
    expected = metrics_of(straight, specs)

    killed = tmp_path / "killed"
    argv = [sys.executable, "-m", "samformer", "benchmark", "--datasets", str(small_csv), "--horizons", "6,12", "--seeds", "0,1"]
    argv += ["--variants", "samformer", "--seq-len", "24", "--epochs", "2", "--batch-size", "64", "--threads", "1", "--out", str(killed)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(killed.rglob("seed*.json"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(killed.rglob("seed*.json")))
    assert 2 <= done_before < len(specs), "the kill must land mid-grid"

    # The CLI applies the same protocol flags as `TINY` (progress only changes the display).
    assert main(argv[3:]) == 0
    assert metrics_of(killed, specs) == expected
    assert pending(specs, killed) == []


def test_corrupt_run_file_is_reported_moved_aside_and_redone(tmp_path, small_csv, capsys):
    specs = tiny_specs(small_csv)[:1]
    out = tmp_path / "runs"
    run_grid(specs, out, progress=False)
    path = run_path(out, specs[0])
    good = json.loads(path.read_text())
    path.write_text(path.read_text()[:50])  # half-written
    report = run_grid(specs, out, progress=False)
    assert report.ran == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert path.with_name(path.name + ".corrupt").exists()
    assert json.loads(path.read_text())["test_mse"] == good["test_mse"]


def write_run(
    root: Path, variant: str, dataset: str, horizon: int, seed: int, mse: float, mae: float, protocol: str = "paper", val: float = 0.5
):
    path = root / variant / dataset / f"H{horizon}" / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"dataset": dataset, "horizon": horizon, "seq_len": 512, "seed": seed, "variant": variant}
    record |= {"test_mse": mse, "test_mae": mae, "val_mse": val, "protocol": protocol, "train_seconds": 10.0}
    path.write_text(json.dumps(record))


def test_table_gives_hand_computed_means_and_stds(tmp_path, capsys):
    write_run(tmp_path, "samformer", "ETTh1", 96, 0, 0.36, 0.39)
    write_run(tmp_path, "samformer", "ETTh1", 96, 1, 0.38, 0.40)
    write_run(tmp_path, "samformer", "ETTh1", 96, 2, 0.40, 0.42)
    write_run(tmp_path, "samformer", "ETTh2", 192, 0, 0.30, 0.35)
    write_run(tmp_path, "linear", "ETTh1", 96, 0, 0.45, 0.44)
    (tmp_path / "samformer" / "ETTh1" / "H96" / "seed9.json").write_text("{not json")  # reported, not used
    cells = {(c["variant"], c["dataset"], c["horizon"]): c for c in summarise(tmp_path)}
    c = cells[("samformer", "ETTh1", 96)]
    assert c["n_seeds"] == 3
    assert c["mse_mean"] == pytest.approx(0.38)
    assert c["mse_std"] == pytest.approx(0.02)  # sample std of 0.36, 0.38, 0.40
    assert c["mae_mean"] == pytest.approx((0.39 + 0.40 + 0.42) / 3)
    assert c["mae_std"] == pytest.approx(((0.39 - 0.40333) ** 2 + (0.40 - 0.40333) ** 2 + (0.42 - 0.40333) ** 2) ** 0.5 / 2**0.5, abs=1e-4)
    assert c["paper_mse"] == 0.381 and cells[("samformer", "ETTh2", 192)]["paper_mse"] == 0.340
    assert cells[("linear", "ETTh1", 96)]["paper_mse"] is None
    assert "seed9.json" in capsys.readouterr().err

    md = render_table(list(cells.values()))
    assert "| ETTh1 | 96 | 3 | 0.380 ± 0.020 |" in md
    assert "-0.3%" in md  # (0.380 − 0.381) / 0.381
    # the average row compares ours with the paper on the same cells: (0.38 + 0.30)/2 vs (0.381 + 0.340)/2
    assert f"{(0.381 + 0.340) / 2:.3f} (ours 0.340 on these 2) | -5.7%" in md

    assert main(["table", str(tmp_path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["variant"] for r in rows} == {"samformer", "linear"}
    assert set(rows[0]) == {
        "dataset",
        "horizon",
        "variant",
        "protocol",
        "n_seeds",
        "mse_mean",
        "mse_std",
        "mae_mean",
        "mae_std",
        "paper_mse",
        "selected",
    }


def test_tuned_cells_select_on_validation_over_the_seeds_every_setting_ran(tmp_path, capsys):
    search = tmp_path / "search"
    # rho=0.3 has only seed 0; rho=0.7 has seeds 0-2, with a lower validation mean over all three
    # (0.2) but a higher one on seed 0, the only seed both ran: rho=0.3 must be selected.
    write_run(search / "rho=0.3", "samformer", "ETTh2", 720, 0, 0.50, 0.45, protocol="custom(rho=0.3)", val=0.55)
    for seed, (val, mse) in enumerate([(0.60, 0.30), (0.00, 0.31), (0.00, 0.32)]):
        write_run(search / "rho=0.7", "samformer", "ETTh2", 720, seed, mse, 0.40, val=val)
    # another cell where the better test MSE (rho=0.3) must not sway the choice: validation picks rho=0.7
    write_run(search / "rho=0.3", "samformer", "ETTh1", 96, 0, 0.10, 0.20, protocol="custom(rho=0.3)", val=0.70)
    write_run(search / "rho=0.7", "samformer", "ETTh1", 96, 0, 0.40, 0.41, val=0.69)
    write_run(search / "rho=0.7", "samformer", "ETTh1", 96, 1, 0.44, 0.43, val=0.90)
    cells = {(c["dataset"], c["horizon"]): c for c in summarise_tuned(search)}
    assert cells[("ETTh2", 720)]["selected"] == "rho=0.3"
    assert cells[("ETTh2", 720)]["selection_seeds"] == [0]
    assert (cells[("ETTh2", 720)]["n_seeds"], cells[("ETTh2", 720)]["mse_mean"]) == (1, 0.50)
    assert cells[("ETTh1", 96)]["selected"] == "rho=0.7"
    assert cells[("ETTh1", 96)]["mse_mean"] == pytest.approx(0.42)  # both seeds of rho=0.7
    assert cells[("ETTh1", 96)]["mse_std"] == pytest.approx(0.04 / 2**0.5)
    assert {c["protocol"] for c in cells.values()} == {"tuned(rho)"}

    write_run(tmp_path / "runs", "samformer", "ETTh1", 96, 0, 0.36, 0.39)
    assert main(["table", str(tmp_path / "runs"), "--tuned", str(search)]) == 0
    md = capsys.readouterr().out
    assert "### samformer (protocol: tuned(rho))" in md and "| ETTh2 | 720 | 1 (rho=0.3) | 0.500 ± 0.000 |" in md
    assert main(["table", str(tmp_path / "runs"), "--tuned", str(tmp_path / "missing")]) == 2
    assert "--tuned" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["table", str(tmp_path / "runs"), "--tuned", str(tmp_path / "empty")]) == 2
    assert "rho=0.3" in capsys.readouterr().err


def test_runs_with_other_protocols_are_kept_apart(tmp_path):
    write_run(tmp_path, "samformer", "ETTh1", 96, 0, 0.36, 0.39, protocol="paper")
    write_run(tmp_path / "x", "samformer", "ETTh1", 96, 0, 0.50, 0.50, protocol="custom(precision=bf16)")
    protocols = sorted(c["protocol"] for c in summarise(tmp_path))
    assert protocols == ["custom(precision=bf16)", "paper"]


def test_protocol_label_names_only_settings_that_differ_from_the_paper():
    from samformer.experiments.run import RunSpec

    # ETTh1's paper settings: lr 1e-3, batch 32, rho 0.7, fp32; weather's lr is 1e-4.
    assert RunSpec("ETTh1", 96, train_options={"lr": 1e-3, "batch_size": 32, "precision": "fp32", "progress": False}).protocol() == "paper"
    assert RunSpec("weather", 96, train_options={"lr": 1e-3}).protocol() == "custom(lr=0.001)"
    assert RunSpec("ETTh1", 96, train_options={"rho": 0.5, "precision": "bf16"}).protocol() == "custom(precision=bf16,rho=0.5)"
    assert RunSpec("ETTh1", 96, seq_len=336).protocol() == "custom(seq_len=336)"


def test_table_and_benchmark_errors(tmp_path, capsys):
    assert main(["table", str(tmp_path / "none")]) == 2
    assert main(["table", str(tmp_path)]) == 2
    assert main(["benchmark", "--datasets", "ETTh9", "--out", str(tmp_path / "o")]) == 2
    assert main(["benchmark", "--datasets", "ETTh1", "--variants", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "no run files" in err and "unknown dataset 'ETTh9'" in err and "unknown variant 'bogus'" in err


def tiny_argv(csv: Path, out: Path, *extra: str) -> list[str]:
    return ["benchmark", "--datasets", str(csv), "--horizons", "6", "--seq-len", "24", "--epochs", "1", "--out", str(out), *extra]


def test_a_run_of_another_configuration_is_never_reused(tmp_path, small_csv, capsys):
    out = tmp_path / "runs"
    assert main(tiny_argv(small_csv, out, "--rho", "0.7")) == 0
    (stored,) = out.rglob("seed0.json")
    before = stored.read_bytes()
    capsys.readouterr()
    for extra, setting in [
        (("--rho", "0.05"), "rho 0.7 there, 0.05 here"),
        (("--rho", "0.7", "--batch-size", "16"), "batch_size 32 there"),
    ]:
        assert main(tiny_argv(small_csv, out, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "a different configuration is stored at" in err and setting in err
        assert "use another --out or remove it" in err
    assert main(tiny_argv(small_csv, out, "--rho", "0.7")) == 0  # the same configuration: reused
    assert json.loads(capsys.readouterr().out)["skipped"] == 1
    assert stored.read_bytes() == before


def test_a_changed_csv_is_a_different_configuration(tmp_path, small_csv, capsys):
    out = tmp_path / "runs"
    assert main(tiny_argv(small_csv, out)) == 0
    lines = small_csv.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(",", ",1", 1)  # one value changed, same path
    small_csv.write_text("".join(lines))
    assert main(tiny_argv(small_csv, out)) == 2
    assert "dataset sha256" in capsys.readouterr().err


def test_two_csvs_with_the_same_file_name_keep_their_own_runs(tmp_path):
    from tests.conftest import make_frame

    for folder, seed in (("a", 0), ("b", 1)):
        (tmp_path / folder).mkdir()
        make_frame(seed=seed).to_csv(tmp_path / folder / "data.csv")
    out = tmp_path / "runs"
    both = f"{tmp_path / 'a' / 'data.csv'},{tmp_path / 'b' / 'data.csv'}"
    assert main(tiny_argv(Path(both), out)) == 0
    records = [json.loads(p.read_text()) for p in sorted(out.rglob("seed0.json"))]
    assert len(records) == 2
    assert sorted(Path(r["data_protocol"]["source"]["path"]).parent.name for r in records) == ["a", "b"]
    assert records[0]["test_mse"] != records[1]["test_mse"]


def test_mistyped_run_files_are_reported_and_skipped_by_table(tmp_path, capsys):
    write_run(tmp_path, "samformer", "ETTh1", 96, 0, 0.36, 0.39)
    for seed, (key, value) in enumerate([("test_mse", "0.3"), ("horizon", "96"), ("val_mse", True), ("variant", 3)], start=1):
        write_run(tmp_path, "samformer", "ETTh1", 96, seed, 0.30, 0.30)
        path = tmp_path / "samformer" / "ETTh1" / "H96" / f"seed{seed}.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {key: value}))
    assert main(["table", str(tmp_path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert row["n_seeds"] == 1 and row["mse_mean"] == 0.36  # only the well-formed run
    assert captured.err.count("wrong type") == 4 and "test_mse='0.3'" in captured.err


def test_records_of_older_versions_are_reused_when_what_they_hold_matches(tmp_path, small_csv):
    spec = grid([str(small_csv)], [6], [0], seq_len=24, train_options={"epochs": 1, "progress": False})[0]
    path = run_path(tmp_path, spec)
    path.parent.mkdir(parents=True)
    old = {"dataset": "small", "horizon": 6, "seq_len": 24, "seed": 0, "variant": "samformer", "protocol": spec.protocol()}
    path.write_text(json.dumps(old | {"test_mse": 0.3, "test_mae": 0.4, "val_mse": 0.5, "train_config": {"rho": 0.7, "epochs": 1}}))
    assert pending([spec], tmp_path) == []
    path.write_text(json.dumps(old | {"test_mse": 0.3, "test_mae": 0.4, "val_mse": 0.5, "train_config": {"rho": 0.5, "epochs": 1}}))
    with pytest.raises(SamformerError, match="rho 0.5 there, 0.7 here"):
        pending([spec], tmp_path)


# --- stacks: a cell's seeds (and rho values) trained together


def test_a_cells_seeds_train_as_one_stack_with_the_records_of_separate_runs_and_an_ensemble(tmp_path, small_csv, capsys):
    specs = grid([str(small_csv)], [6], [0, 1, 2], ["samformer"], seq_len=24, train_options=TINY)
    report = run_grid(specs, tmp_path / "stacked", progress=False, stack=True)
    assert report.ran == 3
    for spec in specs:
        alone = tmp_path / f"alone{spec.seed}"
        run_grid([spec], alone, progress=False)  # one pending run: trained alone, by `execute`
        assert_same_record(json.loads(run_path(tmp_path / "stacked", spec).read_text()), json.loads(run_path(alone, spec).read_text()))
    ensemble = json.loads(run_path(tmp_path / "stacked", specs[0]).with_name("ensemble-seeds0-1-2.json").read_text())
    members = [json.loads(run_path(tmp_path / "stacked", s).read_text())["test_mse"] for s in specs]
    assert ensemble["seeds"] == [0, 1, 2] and ensemble["members_test_mse"] == members
    assert ensemble["test_mse"] <= max(members)  # the mean forecast's squared error is at most the worst member's (convexity)
    assert main(["table", str(tmp_path / "stacked"), "--ensembles"]) == 0
    table = capsys.readouterr().out
    assert "### Ensembles (mean forecast of the seeds)" in table and "paper" in table and "0,1,2" in table
    assert f"{ensemble['test_mse']:.3f}" in table
    assert main(["table", str(tmp_path / "stacked")]) == 0
    assert "Ensemble" not in capsys.readouterr().out  # never mixed into the paper comparison


def test_a_rho_grid_stacks_its_values_into_one_directory_per_value(tmp_path, small_csv, capsys):
    common = ["benchmark", "--datasets", str(small_csv), "--horizons", "6", "--seeds", "0", "--seq-len", "24"]
    common += ["--epochs", "2", "--batch-size", "64"]
    assert main([*common, "--stack", "--rho-grid", "0.2,0.9", "--out", str(tmp_path / "grid")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ran"] == 2
    for rho in ("0.2", "0.9"):
        assert main([*common, "--rho", rho, "--out", str(tmp_path / f"alone{rho}")]) == 0
        (stacked,) = (tmp_path / "grid" / f"rho={rho}").rglob("seed0.json")
        (alone,) = (tmp_path / f"alone{rho}").rglob("seed0.json")
        assert json.loads(stacked.read_text())["train_config"]["rho"] == float(rho)
        assert_same_record(json.loads(stacked.read_text()), json.loads(alone.read_text()))
    capsys.readouterr()
    assert main([*common, "--stack", "--rho-grid", "0.2,0.9", "--out", str(tmp_path / "grid")]) == 0  # resumed: nothing left to run
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ran"] == 0
    assert main([*common, "--rho", "0.2", "--rho-grid", "0.2,0.9", "--out", str(tmp_path / "both")]) == 2
    assert "either --rho or --rho-grid" in capsys.readouterr().err


def test_a_run_another_benchmark_is_training_is_refused_not_trained_twice(tmp_path, small_csv):
    specs = grid([str(small_csv)], [6], [0], ["samformer"], seq_len=24, train_options=TINY)
    out = tmp_path / "runs"
    with exclusive_lock(run_path(out, specs[0])), pytest.raises(SamformerError, match="another samformer process"):
        run_grid(specs, out, progress=False, threads=1)
    assert not run_path(out, specs[0]).exists()


def test_parallel_workers_take_the_largest_stacks_first(tmp_path):
    # weather has 52 696 rows x 21 channels, ETTh1 17 420 x 7: weather H720 with three seeds is the largest
    # stack, a user's file (cost unknown) goes last, and equal costs keep their order.
    specs = grid(["ETTh1", "weather", str(tmp_path / "own.csv")], [96, 720], [0, 1, 2], ["samformer"])
    groups = stacks([(spec, tmp_path) for spec in specs])
    order = [(g[0][0].dataset, g[0][0].horizon, len(g)) for g in longest_first(groups)]
    assert order == [
        ("weather", 720, 3),
        ("weather", 96, 3),
        ("ETTh1", 720, 3),
        ("ETTh1", 96, 3),
        (str(tmp_path / "own.csv"), 96, 3),
        (str(tmp_path / "own.csv"), 720, 3),
    ]
    assert expected_cost(groups[1]) == 3 * 17420 * 7 * (512 + 720)
