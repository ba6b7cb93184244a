"""Import benchmark: segmail's import beside a raw bulk load of the same file, in the same run.

For each database: import a generated file into an empty database (create), then a variant of it
with the same keys and other organisations and segments (update, the re-import). Baselines:
PostgreSQL `COPY` of the file into a plain table; SQLite `executemany` of the parsed rows in one
transaction. Each measurement runs in its own process so peak memory (RSS, workers included) is its
own. Prints each import's phase table (as the import logs it), the load average before and after
(the machine may be shared: compare with the baseline of the same run), and a last line per
database: `RESULT import <db>: N rows/s (of the slower pass), first S s, re-import S s, <baseline>
S s, peak M MB`. With `--repeat N` segmail and the baseline are measured in turn N times each, and
the median attempt (by the two passes together) is reported with the range of every attempt: runs
minutes apart on the shared test machine can differ by a third.

    make bench-import                       # 1,000,000 rows, SQLite and PostgreSQL
    make bench-import BENCH_ARGS="--rows 200000 --engines sqlite"
    make bench-import BENCH_ARGS="--engines postgresql --repeat 3"
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import SEGMENTS, generate  # noqa: E402

PG_ADMIN_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql+psycopg://root@127.0.0.1:5432/root",
)


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


class PhaseCapture(logging.Handler):
    """Keeps the phase timings the import logs at the end of each file."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.phases: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.phases = getattr(record, "phases", None) or self.phases


def child_segmail(url: str, files: list[str]) -> dict:
    from segmail.contacts import segments
    from segmail.imports.pipeline import import_file
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    for name in SEGMENTS:
        segments.create_segment(name=name, engine=engine)
    capture = PhaseCapture()
    logger = logging.getLogger("segmail.imports.pipeline")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    timings = []
    for path in files:
        capture.phases = {}
        start = time.perf_counter()
        result = import_file(path, engine=engine)
        seconds = time.perf_counter() - start
        timings.append({"seconds": seconds, "summary": result.summary_line(), "phases": capture.phases})
    return {"timings": timings, "peak_mb": peak_mb()}


def child_baseline(url: str, files: list[str]) -> dict:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    timings = []
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE raw_contacts (" + ", ".join(f"c{i} TEXT" for i in range(10)) + ")")
    for path in files:
        start = time.perf_counter()
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                cursor = conn.connection.dbapi_connection.cursor()
                with (
                    open(path, "rb") as fh,
                    cursor.copy("COPY raw_contacts FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
                ):
                    while block := fh.read(1 << 20):
                        copy.write(block)
            else:
                with open(path, encoding="utf-8", newline="") as fh:
                    reader = csv.reader(fh)
                    next(reader)
                    batch = []
                    for row in reader:
                        batch.append(tuple(row))
                        if len(batch) == 50_000:
                            conn.exec_driver_sql(
                                f"INSERT INTO raw_contacts VALUES ({', '.join('?' * 10)})", batch
                            )
                            batch = []
                    if batch:
                        conn.exec_driver_sql(
                            f"INSERT INTO raw_contacts VALUES ({', '.join('?' * 10)})", batch
                        )
        timings.append({"seconds": time.perf_counter() - start})
    return {"timings": timings, "peak_mb": peak_mb()}


def fresh_database(engine_name: str, workdir: Path, tag: str) -> tuple[str, callable]:
    """A new empty database; returns its URL and a function that drops it."""
    if engine_name == "sqlite":
        path = workdir / f"{tag}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}", lambda: [
            Path(f"{path}{s}").unlink(missing_ok=True) for s in ("", "-wal", "-shm")
        ]
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    for admin_url in PG_ADMIN_URLS:
        try:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS bench_{tag} WITH (FORCE)"))
                conn.execute(text(f"CREATE DATABASE bench_{tag}"))
            break
        except Exception:  # try the next user the machine may have
            continue
    else:
        raise SystemExit("no PostgreSQL on 127.0.0.1:5432")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS bench_{tag} WITH (FORCE)"))

    return make_url(admin_url).set(database=f"bench_{tag}").render_as_string(hide_password=False), drop


def run_child(kind: str, url: str, files: list[Path]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, url, *map(str, files)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=1, help="attempts of each side, taken in turn")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url, *files = args.child
        result = child_segmail(url, files) if kind == "segmail" else child_baseline(url, files)
        print(json.dumps(result))
        return

    data = HERE / "data"
    data.mkdir(exist_ok=True)
    create = data / f"contacts-{args.rows}.csv"
    update = data / f"contacts-{args.rows}-update.csv"
    for path, variant in ((create, 0), (update, 1)):
        if not path.exists():
            print(f"generating {path.name} ...", flush=True)
            generate(path, rows=args.rows, variant=variant)
    size_mb = create.stat().st_size / 1e6
    print(
        f"file: {args.rows:,} rows, 10 columns, {size_mb:.0f} MB; cores: {os.cpu_count()}; "
        f"validation workers: {os.environ.get('SEGMAIL_IMPORT_WORKERS', 'default')}\n",
        flush=True,
    )

    header = (
        f"{'database':<10} {'pass':<7} {'segmail s':>10} {'rows/s':>9} {'peak MB':>8}   "
        f"{'baseline':<22} {'s':>6} {'rows/s':>9} {'segmail/baseline':>16}"
    )
    lines = [header, "-" * len(header)]
    results = []
    print(f"load average before the runs: {load()}", flush=True)
    for engine_name in args.engines.split(","):
        attempts: dict[str, list[dict]] = {"segmail": [], "baseline": []}
        for _ in range(args.repeat):
            for kind, runs in attempts.items():
                runs.append(run_in_new_database(kind, engine_name, data, [create, update]))
        ours, base = median_attempt(attempts["segmail"]), median_attempt(attempts["baseline"])
        label = "raw COPY" if engine_name.startswith("postgres") else "raw executemany"
        for i, name in enumerate(("create", "update")):
            s, b = ours["timings"][i]["seconds"], base["timings"][i]["seconds"]
            lines.append(
                f"{engine_name:<10} {name:<7} {s:>10.1f} {args.rows / s:>9,.0f} {ours['peak_mb']:>8.0f}   "
                f"{label:<22} {b:>6.1f} {args.rows / b:>9,.0f} {b / s:>15.0%}"
            )
            print(f"  {engine_name} {name}: {ours['timings'][i]['summary']}", flush=True)
            print(phase_table(ours["timings"][i]), flush=True)
        if args.repeat > 1:
            print(f"  {engine_name}, the median attempt of {args.repeat}: {spread(attempts)}", flush=True)
        results.append(result_line(engine_name, args.rows, ours, base, label))
    print()
    print("\n".join(lines))
    print(f"\nload average after the runs: {load()}")
    print("targets (2 cores): 1,000,000 rows in <= 20 s on PostgreSQL, <= 30 s on SQLite, peak <= 500 MB")
    print("\n".join(results))


def run_in_new_database(kind: str, engine_name: str, data: Path, files: list[Path]) -> dict:
    url, drop = fresh_database(engine_name, data, kind)
    try:
        return run_child(kind, url, files)
    finally:
        drop()


def median_attempt(runs: list[dict]) -> dict:
    """The attempt whose two passes together took the median time (its phases belong to it)."""
    return sorted(runs, key=lambda run: sum(t["seconds"] for t in run["timings"]))[len(runs) // 2]


def spread(attempts: dict[str, list[dict]]) -> str:
    """Each side's pass times over all attempts, as ranges."""
    parts = []
    for kind, runs in attempts.items():
        for i, name in enumerate(("first", "re-import")):
            seconds = sorted(run["timings"][i]["seconds"] for run in runs)
            parts.append(f"{kind} {name} {seconds[0]:.1f}–{seconds[-1]:.1f} s")
    return "; ".join(parts)


def phase_table(timing: dict) -> str:
    """The import's own phases; `other` is what they do not cover (run bookkeeping, commit)."""
    phases = dict(timing["phases"])
    phases["other (run record, commit)"] = timing["seconds"] - sum(phases.values())
    width = max(map(len, phases))
    return "\n".join(f"    {name:<{width}} {seconds:>7.2f} s" for name, seconds in phases.items())


def result_line(engine_name: str, rows: int, ours: dict, base: dict, label: str) -> str:
    """RESULT import <db>: rows/s of the slower pass, both passes, the raw baseline, peak memory."""
    first, again = (t["seconds"] for t in ours["timings"])
    dialect = "postgresql" if engine_name == "postgres" else engine_name
    return (
        f"RESULT import {dialect}: {rows / max(first, again):,.0f} rows/s, first {first:.1f} s,"
        f" re-import {again:.1f} s, {label} {base['timings'][0]['seconds']:.1f} s,"
        f" peak {ours['peak_mb']:.0f} MB"
    )


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
