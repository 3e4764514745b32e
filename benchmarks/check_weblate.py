"""Run `errands check` on Weblate, a large public Django + Celery project, and print the figures.

    .venv/bin/python benchmarks/check_weblate.py            # latest Weblate from the index
    .venv/bin/python benchmarks/check_weblate.py --sdist weblate-5.14.3.tar.gz --samples 5

The source distribution is downloaded with pip into a temporary folder and deleted afterwards;
nothing is installed and nothing is committed. Prints the files scanned, the tasks found, the
findings per rule, a few findings of each rule to read, and the wall time of the scan.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

from errands.check import check_paths, get_rule


def download(into: Path, version: str | None) -> Path:
    """Weblate's sdist, fetched with pip (never installed)."""
    spec = f"weblate=={version}" if version else "weblate"
    # `--no-binary weblate` rather than `:all:`: pip builds the sdist's metadata, and with
    # `:all:` it would have to build every build dependency (setuptools...) from source too.
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        "weblate",
        "--dest",
        str(into),
        spec,
    ]
    subprocess.run(command, check=True)
    found = sorted(into.glob("weblate-*.tar.gz"))
    if not found:
        raise SystemExit(f"pip did not leave a weblate sdist in {into}")
    return found[-1]


def extract(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    roots = [p for p in into.iterdir() if p.is_dir() and p.name.startswith("weblate-")]
    return roots[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="a Weblate sdist already downloaded")
    parser.add_argument("--version", help="the Weblate version to download (latest by default)")
    parser.add_argument("--samples", type=int, default=3, help="findings to print per rule")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="errands-weblate-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        sdist = args.sdist.resolve() if args.sdist else download(workdir, args.version)
        source = extract(sdist, workdir / "src")
        print(f"{sdist.name}: fetched and extracted in {time.perf_counter() - started:.1f} s")

        cpu = time.process_time()
        report = check_paths([source], cwd=source)
        cpu = time.process_time() - cpu

        print(
            f"scanned {report.files} files ({report.modules} Python modules parsed, "
            f"{len(report.unparsable)} unparsable), {report.tasks} tasks, "
            f"in {report.seconds:.2f} s wall time ({cpu:.2f} s CPU)"
        )
        counts = Counter(f.code for f in report.findings)
        print(f"{len(report.findings)} findings:")
        for code, count in sorted(counts.items()):
            print(f"  {code} {get_rule(code).name:<28} {count:>5}")
        for code in sorted(counts):
            print(f"\n{code} {get_rule(code).name}, first {args.samples}:")
            shown = [f for f in report.findings if f.code == code][: args.samples]
            for finding in shown:
                print(f"  {finding.path}:{finding.line}:{finding.column}: {finding.message}")


if __name__ == "__main__":
    main()
