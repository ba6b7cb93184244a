"""The contact inbox: find new CSV files, import each once, move it to archive/ or rejected/.

Paths are Airflow ObjectStoragePaths, so `s3://bucket/inbox` works once its provider is installed;
local inboxes are read in place, remote files are copied to a temporary file first.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from segmail import settings

ARCHIVE, REJECTED = "archive", "rejected"
SUFFIXES = (".csv", ".txt", ".tsv")


def default_inbox() -> str:
    return settings.current().inbox


def _storage_path(location: str):  # noqa: ANN202 - ObjectStoragePath is imported lazily
    from airflow.sdk import ObjectStoragePath

    if "://" not in location:
        location = "file://" + str(Path(location).resolve())
    return ObjectStoragePath(location)


def list_inbox(inbox: str | None = None) -> list[str]:
    """New files in the inbox, oldest name first; hidden and partial (`.part`, `.tmp`) files are left."""
    root = _storage_path(inbox or default_inbox())
    if not root.exists():
        root.mkdir(parents=True, exist_ok=True)
        return []
    files = [
        p
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
    ]
    return [str(p) for p in sorted(files, key=lambda p: p.name)]


@contextlib.contextmanager
def _local_copy(path) -> Iterator[Path]:  # noqa: ANN001
    if path.protocol in ("file", "local", ""):
        yield Path(path.path)
        return
    with tempfile.TemporaryDirectory(prefix="segmail-") as tmp:
        local = Path(tmp) / path.name
        with path.open("rb") as src, local.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        yield local


def _free_target(folder, name: str):  # noqa: ANN001, ANN202
    """archive/name, or archive/name.2 ... when a file of that name was archived before."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{name}.{n}"
    return target


def import_inbox_file(location: str, *, mode: str = "merge", source: str = "dag") -> dict:
    """Import one inbox file exactly once and move it out of the inbox.

    A retried task finds the succeeded import of the same name and content and only moves the file;
    a file that is no longer in the inbox was handled by an earlier try.
    """
    from segmail.imports.pipeline import file_sha256, import_file
    from segmail.imports.report import write_issue_report
    from segmail.store.db import default_engine
    from segmail.store.read import finished_import

    path = _storage_path(location)
    if not path.exists():
        return {"file_name": path.name, "status": "gone", "error": "no longer in the inbox (handled earlier)"}
    inbox = path.parent
    with _local_copy(path) as local:
        previous = finished_import(file_name=path.name, sha256=file_sha256(local))
        if previous is not None:
            target = _free_target(inbox / ARCHIVE, path.name)
            path.move(target)
            return {
                "file_name": path.name,
                "status": "skipped",
                "import_run_id": previous.id,
                "error": f"already imported by import run {previous.id}",
                "archived_to": str(target),
            }
        result = import_file(local, mode=mode, source=source)
    summary = result.as_dict()
    if result.status == "succeeded":
        target = _free_target(inbox / ARCHIVE, path.name)
        path.move(target)
        report = target.parent / f"{target.name}.report.csv"
        with tempfile.TemporaryDirectory(prefix="segmail-") as tmp:
            local_report = write_issue_report(
                default_engine(), result.import_run_id, Path(tmp) / "report.csv"
            )
            _storage_path(str(local_report)).copy(report)
        summary.update(archived_to=str(target), report_path=str(report))
        _set_report_path(result.import_run_id, str(report))
    else:
        target = _free_target(inbox / REJECTED, path.name)
        path.move(target)
        reason = target.parent / f"{target.name}.error.txt"
        with reason.open("w") as fh:
            fh.write(f"{path.name} was rejected whole; nothing was imported.\nReason: {result.error}\n")
        summary.update(rejected_to=str(target))
    return summary


def _set_report_path(import_run_id: int, report_path: str) -> None:
    from sqlalchemy import update

    from segmail.store.db import session_scope
    from segmail.store.models import ImportRun

    with session_scope() as session:
        session.execute(
            update(ImportRun).where(ImportRun.id == import_run_id).values(report_path=report_path)
        )


def summarize(results: list[dict]) -> dict:
    """Totals over the files of one run, for the Asset event, the notification and the log."""
    from segmail.store.read import IMPORT_COUNTS

    totals = {key: sum(r.get(key) or 0 for r in results) for key in IMPORT_COUNTS}
    totals["files"] = len(results)
    totals["imported_files"] = sum(1 for r in results if r.get("status") == "succeeded")
    totals["rejected_files"] = [r["file_name"] for r in results if r.get("status") == "rejected"]
    totals["import_run_ids"] = [r["import_run_id"] for r in results if r.get("status") == "succeeded"]
    return totals
