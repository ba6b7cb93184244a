"""The contacts_import DAG runs end to end with dag.test(), with segmail's data on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil

import pytest
from segmail.contacts import segments
from sqlalchemy import text
from tests_support import get_dag, states

GOOD = (
    "Country Code;Vorname;Nachname;E-Mail;Externe ID;Segmente\n"
    "DE;Anna;Müller;anna@example.com;E1;VIP\n"
    "+1;Bad;Row;bad@example.com;E2;VIP\n"
    "AT;Bernd;Huber;bernd@example.com;E3;Nope\n"
)


def asset_events() -> list[dict]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return [e.extra for e in session.query(AssetEvent).order_by(AssetEvent.id)]


@pytest.mark.airflow
def test_contacts_import_dag_imports_archives_rejects_and_never_imports_twice(engine, airflow_home, tmp_path):
    segments.create_segment(name="VIP", engine=engine)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "contacts.csv").write_text(GOOD, encoding="cp1252")
    (inbox / "broken.csv").write_text("just;some;text\n1;2;3\n")
    events_before = len(asset_events())
    dag = get_dag("contacts_import")

    run = dag.test(run_conf={"inbox": str(inbox), "mode": "merge"})
    assert states(run) == {
        "find_files": "success",
        "import_file[broken.csv]": "success",
        "import_file[contacts.csv]": "success",
        "summarize": "success",
        "check_rejected_files": "failed",  # a rejected file turns the run red after good files landed
    }
    assert run.state == "failed"
    assert sorted(p.name for p in (inbox / "archive").iterdir()) == [
        "contacts.csv",
        "contacts.csv.report.csv",
    ]
    assert sorted(p.name for p in (inbox / "rejected").iterdir()) == ["broken.csv", "broken.csv.error.txt"]
    assert "missing required column" in (inbox / "rejected" / "broken.csv.error.txt").read_text()
    report = (inbox / "archive" / "contacts.csv.report.csv").read_text(encoding="utf-8-sig")
    assert "3,Country Code,'+1,error" in report and "4,Segmente,Nope,warning" not in report
    assert "4,Segments,Nope,warning" in report
    with engine.connect() as conn:
        names = conn.execute(text("SELECT first_name FROM segmail_contacts ORDER BY id")).scalars().all()
    assert names == ["Anna", "Bernd"]
    events = asset_events()[events_before:]
    assert len(events) == 1
    assert (events[0]["created"], events[0]["rejected"], events[0]["rejected_files"]) == (
        2,
        1,
        ["broken.csv"],
    )

    # The same file dropped again (or a retried task) is recognised and only archived.
    shutil.copy(inbox / "archive" / "contacts.csv", inbox / "contacts.csv")
    again = dag.test(run_conf={"inbox": str(inbox), "mode": "merge"})
    assert again.state == "success"
    assert states(again)["summarize"] == "skipped"  # nothing imported: no Asset event
    assert len(asset_events()) == events_before + 1
    assert (inbox / "archive" / "contacts.csv.2").is_file()
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT COUNT(*) FROM segmail_import_runs WHERE status = 'succeeded'")).scalar()
            == 1
        )


@pytest.mark.airflow
def test_completion_notice_goes_out_through_the_smtp_provider(engine, airflow_home, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "c.csv").write_text("Country Code,First Name,Last Name,Email\nDE,A,B,a@example.com\n")
    run = get_dag("contacts_import").test(
        run_conf={"inbox": str(inbox), "notify_to": "data-team@example.com"}
    )
    assert run.state == "success"
    (notice,) = smtp_sink.messages
    assert notice.recipients == ["data-team@example.com"]
    assert notice.parsed()["Subject"] == "segmail import: 1 file(s), 1 created, 0 updated, 0 rejected"
