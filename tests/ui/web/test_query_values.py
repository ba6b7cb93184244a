"""Absurd query values on every route and data endpoint, on SQLite and PostgreSQL: a 4xx or a
correct (empty) answer, never a 500. Before, page or id 10^20 raised OverflowError on SQLite and
`bigint out of range` on PostgreSQL, limit -1 `LIMIT must not be negative`, a NUL byte a psycopg
error, and `%`/`_` in a search matched everything.

The monitoring app runs in-process (`monitoring_client`: TestClient, server errors raised) on the
test database."""

from __future__ import annotations

import pytest

BIG = 10**20  # past every integer type of both databases
INT_MAX = 2**31 - 1


@pytest.fixture
def seeded(newsletter_audience) -> dict:
    """8 contacts, a newsletter run (7 mails, 4 to send), suppressions with `%`, `_` and `\\`."""
    from segmail.contacts.suppressions import add_suppression
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing

    engine = newsletter_audience
    run_id = freeze_audience(get_mailing("newsletter"), dag_run_id="values", engine=engine)
    add_suppression(address="a_b@example.org", reason="100% sure", engine=engine)
    add_suppression(address="axb@example.org", reason="1000 sure", engine=engine)
    add_suppression(address="back@example.org", reason="back\\slash", engine=engine)
    return {"run_id": run_id}


@pytest.fixture
def client(seeded, monitoring_client):
    return monitoring_client


# Every route that names a run, a contact or an import by its id.
BY_ID = (
    "runs/{} api/runs/{}/mails runs/{}/mails.csv contacts/{} imports/{}/issues.csv imports/{}/rejected.csv"
)
# Every route with a `q` search (the first three also filter by `status`).
SEARCHABLE = "runs/{} api/runs/{}/mails runs/{}/mails.csv contacts suppressions suppressions.csv"


def paths(templates: str, value: int) -> list[str]:
    return [f"/segmail/{path.format(value)}" for path in templates.split()]


def id_paths(some_id: int) -> list[str]:
    return paths(BY_ID, some_id)


@pytest.mark.parametrize("bad_id", [BIG, -BIG, INT_MAX + 1, 2**63, 0, -1], ids=str)
def test_ids_that_cannot_exist_are_404(client, bad_id):
    for path in id_paths(bad_id):
        answer = client.get(path)
        assert answer.status_code == 404, path
        if "/api/" in path:
            assert answer.json() == {"detail": f"There is no mailing run #{bad_id}."}
        else:
            assert answer.headers["content-type"].startswith("text/html"), path


def test_ids_that_are_no_numbers_are_422(client):
    for path in id_paths(1):
        assert client.get(path.replace("/1", "/1.5", 1)).status_code == 422, path
        assert client.get(path.replace("/1", "/abc", 1)).status_code == 422, path


def paged_paths(run_id: int) -> list[str]:
    return [f"/segmail/runs/{run_id}", f"/segmail/api/runs/{run_id}/mails", "/segmail/suppressions"]


@pytest.mark.parametrize("page", [BIG, 1_000_001, 0, -1, -BIG, "x"], ids=str)
def test_absurd_pages_are_422(client, seeded, page):
    for path in paged_paths(seeded["run_id"]):
        answer = client.get(path, params={"page": page})
        assert answer.status_code == 422, path
        assert "page" in answer.text, path


def test_a_page_past_the_end_is_empty(client, seeded):
    run_id = seeded["run_id"]
    mails = client.get(f"/segmail/api/runs/{run_id}/mails", params={"page": 1_000_000}).json()
    assert mails == {"total": 7, "page": 1_000_000, "mails": []}
    page = client.get(f"/segmail/runs/{run_id}", params={"page": 1_000_000})
    assert page.status_code == 200 and "No mails on page 1000000." in page.text
    assert "7 mail(s); page 1000000 of 1" in page.text
    suppressions = client.get("/segmail/suppressions", params={"page": 1_000_000})
    assert suppressions.status_code == 200 and "No suppressed addresses." in suppressions.text


@pytest.mark.parametrize("limit", [-1, 0, 501, BIG, -BIG], ids=str)
def test_absurd_limits_are_422(client, limit):
    answer = client.get("/segmail/api/runs", params={"limit": limit})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "limit"]


def test_the_largest_limit_answers(client, seeded):
    (run,) = client.get("/segmail/api/runs", params={"limit": 500}).json()
    assert run["run"] == seeded["run_id"] and run["pending"] == 4


def search_paths(run_id: int) -> list[str]:
    return paths(SEARCHABLE, run_id)


@pytest.mark.parametrize("text", ["\x00", "anna\x00", "x" * 201], ids=["nul", "nul-inside", "too-long"])
def test_searches_postgresql_cannot_run_are_422(client, seeded, text):
    for path in search_paths(seeded["run_id"]):
        assert client.get(path, params={"q": text}).status_code == 422, path
    for path in ("/segmail/", "/segmail/api/runs"):
        assert client.get(path, params={"mailing": text}).status_code == 422, path


def test_an_unknown_status_is_422(client, seeded):
    for path in search_paths(seeded["run_id"])[:3]:
        assert client.get(path, params={"status": "bogus"}).status_code == 422, path


def test_a_nul_in_a_dag_run_id_is_404(client):
    assert client.get("/segmail/dag-runs/mailing__newsletter/manual%00x").status_code == 404
    assert client.get("/segmail/dag-runs/mailing__news%00letter/manual").status_code == 404


def addresses(client, q: str) -> list[str]:
    rows = client.get("/segmail/suppressions.csv", params={"q": q}).content.decode("utf-8-sig").splitlines()
    return sorted(line.split(",")[0] for line in rows[1:])


def test_percent_underscore_and_backslash_are_searched_literally(client, seeded):
    assert addresses(client, "0%") == ["a_b@example.org"]  # "100% sure", not "1000 sure"
    assert addresses(client, "a_b") == ["a_b@example.org"]  # not axb@
    assert addresses(client, "%") == ["a_b@example.org"]
    assert addresses(client, "_") == ["a_b@example.org"]
    assert addresses(client, "\\") == ["back@example.org"]
    assert addresses(client, "sure") == ["a_b@example.org", "axb@example.org"]
    assert "3 address(es)" in client.get("/segmail/suppressions", params={"q": "@"}).text

    run_id = seeded["run_id"]
    assert client.get(f"/segmail/api/runs/{run_id}/mails", params={"q": "%"}).json()["total"] == 0
    assert client.get(f"/segmail/api/runs/{run_id}/mails", params={"q": "_"}).json()["total"] == 0
    assert (
        client.get(f"/segmail/api/runs/{run_id}/mails", params={"q": "ANNA"}).json()["total"] == 2
    )  # E1 and E7
    assert "No contact found." in client.get("/segmail/contacts", params={"q": "%"}).text
    assert "No contact found." in client.get("/segmail/contacts", params={"q": "_"}).text
    assert "anna@example.com" in client.get("/segmail/contacts", params={"q": "anna@"}).text


def test_every_page_answers_on_this_database(client, seeded):
    """The plain pages, so a failure above is about the value, not the database."""
    run_id = seeded["run_id"]
    for path in [*search_paths(run_id), "/segmail/", "/segmail/api/runs", "/segmail/imports"]:
        assert client.get(path).status_code == 200, path
    contact_id = client.get(f"/segmail/api/runs/{run_id}/mails").json()["mails"][0]["contact_id"]
    assert client.get(f"/segmail/contacts/{contact_id}").status_code == 200
    assert client.get("/segmail/imports/1/issues.csv").status_code == 200
