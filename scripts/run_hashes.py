"""Hashes of run folders' tables, to check that a change leaves a run's output byte-identical.

Runs ``lastwatt run --quiet`` for each case (seed, flags, config) into a temporary folder and
prints one line per table file: case, file, SHA-256; and one per run.json summary without its
wall-time field. Run it on two checkouts and diff the outputs:

    .venv/bin/python scripts/run_hashes.py > /tmp/after.txt
    (cd ../main && .venv/bin/python scripts/run_hashes.py) > /tmp/before.txt
    diff /tmp/before.txt /tmp/after.txt && echo identical

Usage: python scripts/run_hashes.py [--rounds N] [--case NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# a ramp load draws less than the plan's full draw: some quotas bind mid-round
BINDING_TOML = 'seed = 5\n[devices]\nprofile = "ramp"\n'
WALL_FIELDS = ("wall_time_s",)
CASES: dict[str, list[str]] = {
    "seed42": ["--seed", "42"],
    "seed1": ["--seed", "1"],
    "seed7": ["--seed", "7"],
    "seed3-csv": ["--seed", "3", "--format", "csv"],
    "seed42-meter-readings": ["--seed", "42", "--meter-readings"],
    "binding-quotas": ["@binding"],
    "binding-quotas-meter-readings": ["@binding", "--meter-readings"],
}


def _lastwatt() -> list[str]:
    exe = Path(sys.executable).with_name("lastwatt")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lastwatt.cli"]


def hash_case(name: str, args: list[str], rounds: int | None, tmp: Path) -> list[str]:
    binding = tmp / "binding.toml"
    binding.write_text(BINDING_TOML)
    args = [str(binding) if a == "@binding" else a for a in args]
    out = tmp / name
    extra = ["--rounds", str(rounds)] if rounds else []
    subprocess.run([*_lastwatt(), "run", "--quiet", "--out", str(out), *args, *extra],
                   check=True, stdout=subprocess.DEVNULL)
    (run_dir,) = out.iterdir()
    lines = []
    for path in sorted(run_dir.iterdir()):
        if path.name == "run.json":
            run = json.loads(path.read_text())
            for f in WALL_FIELDS:
                run["summary"].pop(f, None)
            blob = json.dumps(run, sort_keys=True).encode()
        else:
            blob = path.read_bytes()
        lines.append(f"{name} {path.name} {hashlib.sha256(blob).hexdigest()}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=None, help="default: the config's year")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ns.case or CASES:
            print("\n".join(hash_case(name, CASES[name], ns.rounds, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
