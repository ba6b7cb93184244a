"""The contact inbox: find new CSV files, import each once, move it to archive/ or rejected/.

Paths are Airflow ObjectStoragePaths, so `s3://bucket/inbox` works once its provider is installed;
local inboxes are read in place, remote files are copied to a temporary file first.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from segmail import settings
from segmail.store.models import ImportStatus

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

ARCHIVE, REJECTED = "archive", "rejected"
SUFFIXES = (".csv", ".txt", ".tsv")


class InboxOutcome(StrEnum):
    """The status of an inbox file that was not imported this time (else an ImportStatus)."""

    SKIPPED = "skipped"  # the same name and content were imported before: only archived
    GONE = "gone"  # no longer in the inbox: an earlier try handled it


def default_inbox() -> str:
    return settings.current().inbox


def _storage_path(location: str) -> ObjectStoragePath:
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
def _local_copy(path: ObjectStoragePath) -> Iterator[Path]:
    if path.protocol in ("file", "local", ""):
        yield Path(path.path)
        return
    with tempfile.TemporaryDirectory(prefix="segmail-") as tmp:
        local = Path(tmp) / path.name
        with path.open("rb") as src, local.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        yield local


def _free_target(folder: ObjectStoragePath, name: str) -> ObjectStoragePath:
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
    from segmail.store.read import finished_import

    path = _storage_path(location)
    if not path.exists():
        return {
            "file_name": path.name,
            "status": InboxOutcome.GONE,
            "error": "no longer in the inbox (handled earlier)",
        }
    with _local_copy(path) as local:
        previous = finished_import(file_name=path.name, sha256=file_sha256(local))
        if previous is not None:
            return {
                "file_name": path.name,
                "status": InboxOutcome.SKIPPED,
                "import_run_id": previous.id,
                "error": f"already imported by import run {previous.id}",
                "archived_to": str(_move(path, ARCHIVE)),
            }
        result = import_file(local, mode=mode, source=source)
    if result.status == ImportStatus.SUCCEEDED:
        return {**result.as_dict(), **_archive(path, result.import_run_id)}
    return {**result.as_dict(), **_reject(path, result.error)}


def _move(path: ObjectStoragePath, folder: str) -> ObjectStoragePath:
    target = _free_target(path.parent / folder, path.name)
    path.move(target)
    return target


def _archive(path: ObjectStoragePath, import_run_id: int) -> dict:
    """Into archive/, with the run's issue report beside it."""
    from segmail.imports.report import write_issue_report
    from segmail.store.db import default_engine

    target = _move(path, ARCHIVE)
    report = target.parent / f"{target.name}.report.csv"
    with tempfile.TemporaryDirectory(prefix="segmail-") as tmp:
        local_report = write_issue_report(default_engine(), import_run_id, Path(tmp) / "report.csv")
        _storage_path(str(local_report)).copy(report)
    _set_report_path(import_run_id, str(report))
    return {"archived_to": str(target), "report_path": str(report)}


def _reject(path: ObjectStoragePath, error: str | None) -> dict:
    """Into rejected/, with a note that says why."""
    name = path.name
    target = _move(path, REJECTED)
    reason = target.parent / f"{target.name}.error.txt"
    with reason.open("w") as fh:
        fh.write(f"{name} was rejected whole; nothing was imported.\nReason: {error}\n")
    return {"rejected_to": str(target)}


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
    succeeded = [r for r in results if r.get("status") == ImportStatus.SUCCEEDED]
    totals["imported_files"] = len(succeeded)
    totals["rejected_files"] = [r["file_name"] for r in results if r.get("status") == ImportStatus.REJECTED]
    totals["import_run_ids"] = [r["import_run_id"] for r in succeeded]
    return totals
