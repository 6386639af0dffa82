"""Start-up and shutdown of the `samformer` process, with and without the console script's garbage-collector setting.

    python benchmarks/startup.py [--rounds 5] [--out results/speed/startup.json]

`samformer.cli.main.run` imports the command modules (torch, pandas, ...) with Python's cyclic garbage collector
off, freezes what they created (`gc.freeze`), and freezes the heap again before the interpreter shuts down.
Both settings are process-wide, so each measurement is a fresh child process; "plain" (the collector as
Python leaves it) and "frozen" (as `run` does) alternate, `--rounds` times each. A child times

- the imports: `samformer.cli.main` and its command modules, then `torch._dynamo`, which `torch.optim`
  imports when a training command builds its optimizer (timed separately: it comes after the freeze);
- the shutdown: from the child's last statement to the end of the process, as its parent sees it.

Prints medians per setting; the last stdout line is one JSON object with every child's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from samformer.files import write_json

CHILD = """
import gc, json, sys, time
frozen = sys.argv[1] == "frozen"
start = time.perf_counter()
if frozen:
    gc.disable()
import samformer.cli.main
samformer.cli.main._command_modules()
if frozen:
    gc.freeze()
    gc.enable()
commands = time.perf_counter()
import torch._dynamo
dynamo = time.perf_counter()
if frozen:
    gc.freeze()
print(json.dumps({"import_commands_s": commands - start, "import_dynamo_s": dynamo - commands, "exit_at": time.time()}), flush=True)
"""


def child(setting: str) -> dict[str, float]:
    """One child process's import times and its shutdown time."""
    done = subprocess.run([sys.executable, "-c", CHILD, setting], check=True, capture_output=True, text=True)
    ended = time.time()
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["shutdown_s"] = ended - figures.pop("exit_at")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="child processes per setting (alternating)")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "frozen": []}
    for _ in range(args.rounds):
        for setting, done in runs.items():
            done.append(child(setting))
    print(f"{'setting':8s}  {'import commands s':>18s}  {'import torch._dynamo s':>22s}  {'shutdown s':>10s}   (medians of {args.rounds})")
    medians = {}
    for setting, done in runs.items():
        medians[setting] = {key: statistics.median(run[key] for run in done) for key in done[0]}
        m = medians[setting]
        print(f"{setting:8s}  {m['import_commands_s']:18.3f}  {m['import_dynamo_s']:22.3f}  {m['shutdown_s']:10.3f}")
    saved = sum(medians["plain"].values()) - sum(medians["frozen"].values())
    print(f"per process: {saved:.2f} s less with the collector setting of `samformer.cli.main.run`")
    result = {"rounds": args.rounds, "medians": medians, "runs": runs}
    if args.out:
        write_json(args.out, result, make_dirs=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
