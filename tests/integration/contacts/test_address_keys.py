"""One address key everywhere: the import's, the opt-outs', the suppressions' and SQL's LOWER agree
on addresses with non-ASCII letters (SQLite's own LOWER only knows ASCII; casefold would make
"straße" and "strasse" one mailbox), on SQLite and PostgreSQL."""

from __future__ import annotations

from segmail.contacts import optouts, segments, suppressions
from segmail.imports.pipeline import import_file
from sqlalchemy import text

HEADER = "Country Code,First Name,Last Name,Email,External ID,Segments"


def opted_out(engine) -> dict[str, bool]:  # noqa: ANN001
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT external_id, email_opt_out FROM segmail_contacts")).all()
    return {external_id: bool(flag) for external_id, flag in rows}


def test_addresses_with_non_ascii_letters_match_in_every_direction(engine, write_csv):
    segments.create_segment(name="News", engine=engine)
    result = import_file(
        write_csv(
            f"{HEADER}\nDE,A,A,Straße@Example.de,E1,News\nDE,B,B,strasse@example.de,E2,News\n"
            "DE,C,C,ÉLODIE@example.fr,E3,News\n"
        ),
        engine=engine,
    )
    assert (result.created, result.rejected) == (3, 0)

    assert optouts.set_opt_out(key="STRAßE@example.DE", opted_out=True, engine=engine) == 1
    assert opted_out(engine) == {"E1": True, "E2": False, "E3": False}  # ß is not ss

    assert optouts.set_opt_out(key="Élodie@Example.FR", opted_out=True, engine=engine) == 1
    assert opted_out(engine)["E3"] is True

    with engine.connect() as conn:  # SQL's LOWER as the keys: every letter, on both databases
        lowered = conn.execute(text("SELECT LOWER(email) FROM segmail_contacts ORDER BY id")).scalars().all()
        keys = conn.execute(text("SELECT email_key FROM segmail_contacts ORDER BY id")).scalars().all()
    assert lowered == keys == ["straße@example.de", "strasse@example.de", "élodie@example.fr"]

    suppressions.add_suppression(address="STRASSE@example.de", reason="hard bounce", engine=engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT address_key FROM segmail_suppressions")).scalars().all() == [
            "strasse@example.de"
        ]
        assert suppressions.suppressed_reason(conn, "Strasse@Example.DE") == "hard bounce"
        assert suppressions.suppressed_reason(conn, "straße@example.de") is None
