"""A run directory's report as HTML and as a picture (the README's), through headless Chromium.

Writes `purpose-dspy report`'s page for RUN_DIR, opens it in headless Chromium (Debian's `chromium`
package: `apt-get install -y chromium`) and saves a screenshot of the page's top; nothing is fetched
from the network (the page forbids it). Prints the two paths and the page's size.

    python benchmarks/monitor_report.py RUN_DIR [--out-dir DIR] [--width 1100] [--height 2000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for name in CHROMIUMS if (path := shutil.which(name))), None)


def screenshot(page: Path, png: Path, *, width: int = 1100, height: int = 2000, timeout: float = 120) -> Path:
    """`page` rendered by headless Chromium into `png` (a fresh profile each time; root needs --no-sandbox)."""
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="purpose-dspy-chromium-") as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={png.resolve()}", page.resolve().as_uri()],
                       check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not png.exists():
        raise SystemExit(f"{chromium} wrote no screenshot {png}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a --monitor-dir of some run/eval/compile calls")
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where report.html and report.png go")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args(argv)

    from purpose_dspy.monitor import Monitor
    from purpose_dspy.monitor.ledger import FILENAME
    from purpose_dspy.monitor.report import render_report

    if not (args.run_dir / FILENAME).exists():
        raise SystemExit(f"{args.run_dir} holds no {FILENAME}: pass a --monitor-dir")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    page, png = args.out_dir / "report.html", args.out_dir / "report.png"
    with Monitor.open(args.run_dir) as monitor:
        page.write_text(render_report(monitor), encoding="utf-8")
    screenshot(page, png, width=args.width, height=args.height)
    print(f"{page} ({page.stat().st_size // 1024} KiB)\n{png} ({png.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
