"""`segmail db upgrade`, the deploy step, and the schema check that tasks run instead of migrating."""

from __future__ import annotations

import pytest
from segmail.cli.main import main
from segmail.store import migrate


def test_db_upgrade_brings_an_empty_database_to_head_and_can_run_again(engine, capsys):
    head = migrate.head_revision()
    migrate.downgrade(engine, "base")  # the default database (SEGMAIL_DB_URL), as if never migrated
    with pytest.raises(migrate.SchemaNotAtHead) as not_migrated:
        migrate.require_head(engine)
    assert str(not_migrated.value) == (
        f"segmail's database schema is at no revision (empty database), expected {head}: "
        "run `segmail db upgrade`"
    )
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip() == f"segmail database at revision {head}"
    migrate.require_head(engine)
    assert main(["db", "upgrade"]) == 0  # idempotent: a deploy may run it every time
    migrate.require_head(engine)


def test_a_schema_behind_head_names_both_revisions(engine):
    head = migrate.head_revision()
    migrate.downgrade(engine, "0001")
    with pytest.raises(
        migrate.SchemaNotAtHead, match=rf"is at 0001, expected {head}: run `segmail db upgrade`$"
    ):
        migrate.require_head(engine)
    migrate.upgrade(engine)
    migrate.require_head(engine)
