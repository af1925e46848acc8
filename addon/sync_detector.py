"""Copies the detector server's source into the add-on's build context (and checks that copy).

The Supervisor builds the add-on image from ``addon/hsi_detector/`` alone, so the server code under
``detector/`` must be copied into ``addon/hsi_detector/rootfs/opt/hsi_detector/`` and committed with
it. Run this after changing the server:

    python addon/sync_detector.py          # copy (and delete files that no longer exist)
    python addon/sync_detector.py --check  # exit 1 and list the differences, change nothing
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import filecmp
from pathlib import Path
import shutil
import sys

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT / "detector"
TARGET = REPO_ROOT / "addon" / "hsi_detector" / "rootfs" / "opt" / "hsi_detector"
# What the image needs: the package and the requirements it installs. Tests and tooling stay out.
PACKAGE = "hsi_detector"
FILES = ("requirements.txt",)
IGNORED_PARTS = frozenset({"__pycache__"})
IGNORED_SUFFIXES = frozenset({".pyc", ".pyo"})


def _wanted(path: Path) -> bool:
    return not IGNORED_PARTS.intersection(path.parts) and path.suffix not in IGNORED_SUFFIXES


def _tree(root: Path) -> set[Path]:
    """Relative paths of the files to ship under ``root`` (the package plus FILES)."""
    found = {Path(name) for name in FILES if (root / name).is_file()}
    package = root / PACKAGE
    if package.is_dir():
        found |= {p.relative_to(root) for p in package.rglob("*") if p.is_file() and _wanted(p)}
    return found


def differences(source: Path = SOURCE, target: Path = TARGET) -> list[str]:
    """Human-readable differences between the server source and the add-on's copy."""
    wanted, present = _tree(source), _tree(target)
    problems = [f"missing in add-on: {p}" for p in sorted(wanted - present)]
    problems += [f"stale in add-on: {p}" for p in sorted(present - wanted)]
    problems += [
        f"differs: {p}"
        for p in sorted(wanted & present)
        if not filecmp.cmp(source / p, target / p, shallow=False)
    ]
    return problems


def sync(source: Path = SOURCE, target: Path = TARGET) -> list[str]:
    """Make the copy identical to the source; returns what was changed."""
    changes = differences(source, target)
    wanted = _tree(source)
    for relative in _tree(target) - wanted:
        (target / relative).unlink()
    for relative in wanted:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, destination)
    for directory in sorted(target.rglob("*"), reverse=True):  # deepest first
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report differences")
    args = parser.parse_args(argv)
    if not (SOURCE / PACKAGE).is_dir():
        print(f"no server package at {SOURCE / PACKAGE}", file=sys.stderr)
        return 2
    if args.check:
        problems = differences(SOURCE, TARGET)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for change in sync(SOURCE, TARGET):
        print(change)
    return 0


if __name__ == "__main__":
    sys.exit(main())
