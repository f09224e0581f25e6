"""``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``: run every benchmark area, write a report.

Exit code 0 when every area ran, 1 when one failed (the report records which and why), 2 on bad flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import benchmarks


def main(argv: list[str] | None = None) -> int:
    areas = benchmarks.discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Short runs of each area (a smoke test, not figures to quote).")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=areas, help=f"Only these areas ({', '.join(areas)}).")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="Report folder (default: runs/benchmarks).")
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds one area may take (default: 3600).")
    args = parser.parse_args(argv)

    results = benchmarks.run_areas(args.only or areas, quick=args.quick, timeout=args.timeout)
    json_path, md_path = benchmarks.write_report(benchmarks.build_report(results, quick=args.quick), args.out)
    failed = [area for area, result in results.items() if result["status"] != "ok"]
    print(f"Report: {json_path} and {md_path}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
