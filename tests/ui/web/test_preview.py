"""The preview page in-process on SQLite and PostgreSQL: what it shows is what sending sends (the
same composer; compared with a mail a real SMTP server received), template errors as text with file
and line, the HTML only inside a sandboxed frame, and a page (never a 500) for any query value."""

from __future__ import annotations

import re
import shutil
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PREVIEW = "/segmail/mailings/newsletter/preview"


class PageParts(HTMLParser):
    """The parts of a preview page a test looks at: header rows, the frame, notes, error, text part."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.headers: list[tuple[str, str]] = []
        self.frames: list[dict] = []
        self.notes: list[str] = []
        self.texts: dict[str, str] = {}
        self._cells: list[str] | None = None
        self._into: tuple[str, list[str]] | None = None
        self._table: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
        elif tag == "tr" and self._table == "headers":
            self._cells = []
        elif tag == "td" and self._cells is not None:
            self._into = ("cell", [])
        elif tag == "iframe":
            self.frames.append(attrs)
        elif tag == "p" and "note" in (attrs.get("class") or ""):
            self._into = ("note", [])
        elif tag == "pre":
            self._into = (attrs.get("id") or "pre", [])

    def handle_data(self, data):  # noqa: ANN001
        if self._into is not None:
            self._into[1].append(data)

    def handle_endtag(self, tag):  # noqa: ANN001
        if self._into is None or tag not in ("td", "p", "pre"):
            if tag == "tr" and self._cells is not None:
                self.headers.append(tuple(self._cells))
                self._cells = None
            return
        kind, parts = self._into
        self._into = None
        if kind == "cell":
            self._cells.append("".join(parts))
        elif kind == "note":
            self.notes.append("".join(parts))
        else:
            self.texts[kind] = "".join(parts)

    def header(self, name: str) -> str | None:
        return next((v for h, v in self.headers if h.lower() == name.lower()), None)


@pytest.fixture
def client(newsletter_audience, monitoring_client):
    return monitoring_client


def shown(client, path: str = PREVIEW, **params) -> PageParts:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text[-2000:]
    return PageParts(answer.text)


def test_the_sample_contact_in_every_language(client):
    page = shown(client)
    assert page.header("Subject") == "Alex, your newsletter: spring check & new models"  # default: en
    (frame,) = page.frames
    assert frame["sandbox"] == "" and "allow" not in " ".join(frame)  # no scripts, forms, same origin
    assert "<h2>Hello Alex Sample,</h2>" in frame["srcdoc"]
    assert "Maria Berger" in frame["srcdoc"]  # the Newsletter segment's salesperson
    assert page.texts["text-part"].startswith("Hello Alex Sample,")
    for name in (
        "From",
        "To",
        "Reply-To",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Message-ID",
    ):
        assert page.header(name), name
    assert page.header("List-Id") == "Monthly newsletter <newsletter.autohaus-demo.example>"
    assert "preisliste-fruehjahr.pdf" in client.get(PREVIEW).text
    de = shown(client, language="de")
    assert de.header("Subject").startswith("Alex, Ihr Newsletter")
    assert de.header("From") == "Autohaus Demo – Service <newsletter@autohaus-demo.example>"
    assert shown(client, language="fr").header("Subject").startswith("Alex, votre lettre")


def test_the_mails_html_is_only_in_the_sandboxed_frame(client):
    text = client.get(PREVIEW).text
    assert "<h2>Hello Alex" not in text and "&lt;h2&gt;Hello Alex" in text
    assert re.search(r'<iframe id="html-part"[^>]* sandbox=""', text)


def test_attachments_are_listed_with_type_and_size(client):
    size = (ROOT / "include" / "attachments" / "preisliste-fruehjahr.pdf").stat().st_size
    row = re.search(r'<table id="attachments">.*?</table>', client.get(PREVIEW).text, re.S).group(0)
    assert "preisliste-fruehjahr.pdf" in row and "application/pdf" in row and f"{size:,} bytes" in row


@pytest.mark.parametrize(
    ("key", "name", "language"),
    [
        pytest.param("E1", "Anna Müller", "de", id="external-id-de-AT-gets-de"),
        pytest.param("ANNA@example.com", "Anna Müller", "de", id="e-mail-any-case"),
        pytest.param("E2", "Chloé Tremblay", "fr", id="fr-CA-gets-fr"),
        pytest.param("E3", "Giulia Rossi", "en", id="it-gets-the-default"),
    ],
)
def test_a_chosen_contact_gets_the_language_sending_chooses(client, key, name, language):
    page = shown(client, contact=key)
    first = name.split()[0]
    assert page.header("Subject").startswith(f"{first}, ")
    assert f"{name}," in page.frames[0]["srcdoc"]
    assert re.search(
        rf'<dd id="shown-language">{language}</dd>', client.get(PREVIEW, params={"contact": key}).text
    )
    other = shown(client, contact=key, language="fr")  # switching the language keeps the contact
    assert other.header("Subject").startswith(f"{first}, votre lettre")


def test_contacts_a_run_would_skip_are_shown_with_the_reason(client):
    assert any("opted out" in note for note in shown(client, contact="E5").notes)
    assert any("no e-mail" in note for note in shown(client, contact="E6").notes)
    assert any("Not in the audience" in note for note in shown(client, contact="E8").notes)


def test_an_injected_header_in_a_name_stays_in_the_to_header(client):
    page = shown(client, contact="E4")
    assert [h for h, _ in page.headers if h.lower() == "bcc"] == []
    assert "evil@attacker.example" in page.header("To")


def test_an_unknown_contact_or_language_is_a_note(client):
    page = shown(client, contact="nobody@example.org")
    assert any("No contact has the external ID or e-mail “nobody@example.org”" in n for n in page.notes)
    assert page.header("To") == "Alex Sample <alex.sample@example.com>"
    page = shown(client, language="xx")
    assert any("no variant “xx”" in note for note in page.notes)
    assert page.header("Subject").startswith("Alex, your newsletter")


def test_a_runs_mail_is_the_mail_the_server_received(client, newsletter_audience, smtp_sink):
    """Message-ID, unsubscribe token, subject, headers and both parts as sent (Date aside)."""
    from mailing_support import send_newsletter

    run_id = send_newsletter(newsletter_audience, "preview-run")
    (sent,) = [m.parsed() for m in smtp_sink.messages if "anna@example.com" in m.recipients]
    page = shown(client, contact="E1", run=run_id)
    for name in (
        "Message-ID",
        "Subject",
        "To",
        "From",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
    ):
        assert page.header(name) == str(sent[name]), name
    assert page.header("Message-ID").startswith(f"<segmail.{run_id}.")
    assert unescape(page.frames[0]["srcdoc"]) == unescape(sent.get_body(("html",)).get_content())
    assert page.texts["text-part"] == sent.get_body(("plain",)).get_content()
    assert client.get(PREVIEW, params={"run": run_id}).status_code == 200  # the run's first mail

    fr = shown(client, run=run_id, language="fr")  # a run's language links pick a mail of that language
    assert fr.header("To").endswith("<chloe@example.ca>")


def test_a_run_without_that_contact_or_language_says_so(client, newsletter_audience):
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing

    run_id = freeze_audience(get_mailing("newsletter"), dag_run_id="frozen", engine=newsletter_audience)
    page = shown(client, run=run_id, contact="E8")  # not in the audience
    assert any(f"No mail of run #{run_id}" in note for note in page.notes)
    assert page.header("Message-ID").startswith(f"<segmail.{run_id}.")
    page = shown(client, run=run_id, language="it")
    assert any("has no mails in “it”" in note for note in page.notes)


@pytest.fixture
def broken_include(tmp_path, monkeypatch):
    """A copy of include/ with a mailing whose templates fail: de at compile time, en at render time."""
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    (include / "templates" / "broken").mkdir()
    (include / "templates" / "broken" / "de.html").write_text("<p>Hallo</p>\n<p>\n{% if %}</p>\n")
    (include / "templates" / "broken" / "en.html").write_text("<p>Hi</p>\n<p>{{ contact.nickname }}</p>\n")
    definition = (include / "mailings" / "newsletter.yaml").read_text().replace("newsletter/", "broken/")
    (include / "mailings" / "broken.yaml").write_text(definition)
    (include / "mailings" / "unreadable.yaml").write_text("name: [unclosed\n")
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    return include


def test_template_errors_show_file_and_line(client, broken_include):
    page = shown(client, "/segmail/mailings/broken/preview", language="de")
    assert "template error" in page.texts["render-error"]
    assert "in broken/de.html, line 3" in page.texts["render-error"]
    page = shown(client, "/segmail/mailings/broken/preview", language="en")
    assert "'dict object' has no attribute 'nickname'" in page.texts["render-error"]
    assert "in broken/en.html, line 2" in page.texts["render-error"]
    assert page.frames == []


def test_a_definition_that_does_not_load_shows_its_error(client, broken_include):
    page = shown(client, "/segmail/mailings/unreadable/preview")
    assert "unreadable.yaml: not valid YAML" in page.texts["render-error"]


# Values no page may answer with a 500: unicode of every kind, markup, SQL, paths, huge numbers.
HOSTILE = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blanks"),
    pytest.param("😀🇦🇹", id="emoji"),
    pytest.param("\u202egnp.exe", id="rtl-override"),
    pytest.param("e\u0301\u0300\u0302" * 20, id="combining-marks"),
    pytest.param("１２", id="fullwidth-digits"),
    pytest.param("<script>alert(1)</script>", id="markup"),
    pytest.param('"><iframe src=x>', id="attribute-break"),
    pytest.param("' OR 1=1 --", id="sql"),
    pytest.param("%_\\", id="like-wildcards"),
    pytest.param("../../../etc/passwd", id="path"),
    pytest.param("99999999999999999999999", id="huge-number"),
    pytest.param("-1", id="negative"),
    pytest.param("0", id="zero"),
    pytest.param("1e3", id="exponent"),
    pytest.param("x" * 100, id="longest-run-value"),
    pytest.param("\r\nBcc: evil@example.org", id="crlf"),
]
STATUSES = {200, 404, 422}


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("param", ["contact", "language", "run"])
def test_hostile_query_values_get_a_page(client, param, value):
    answer = client.get(PREVIEW, params={param: value})
    assert answer.status_code in STATUSES, answer.text[-1000:]
    assert answer.headers["content-type"].startswith("text/html")
    assert "<script>alert(1)" not in answer.text and '"><iframe src=x>' not in answer.text
    if param == "run" and value.strip():
        assert answer.status_code == 404 and "There is no mailing run" in answer.text
    if param == "contact" and value.strip() and answer.status_code == 200:
        assert "showing the sample contact" in answer.text


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%FF%FE", "%C0%AF", "%E2%80%AE%00"], ids=str)
def test_bytes_that_are_no_utf8_get_a_page(client, raw):
    """A lone surrogate, stray bytes, an overlong `/`: what a hand-made URL can carry."""
    answer = client.get(f"{PREVIEW}?contact={raw}&language={raw}")
    assert answer.status_code in STATUSES and answer.headers["content-type"].startswith("text/html")
    assert client.get(f"{PREVIEW}?run={raw}").status_code in (404, 422)


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "x" * 400])
@pytest.mark.parametrize("param", ["contact", "language", "run"])
def test_values_no_database_can_take_are_422(client, param, value):
    answer = client.get(PREVIEW, params={param: value})
    assert answer.status_code == 422 and param in answer.text


@pytest.mark.parametrize(
    "slug",
    [
        "nope",
        "NEWSLETTER",
        "..",
        "news%2Fletter",
        "newsletter.yaml",
        "ñewsletter",
        "😀",
        "n" * 300,
        "news%00letter",
    ],
)
def test_unknown_mailings_are_404_text(client, slug):
    answer = client.get(f"/segmail/mailings/{slug}/preview")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert 'id="error"' in answer.text


def test_a_run_of_another_mailing_or_a_missing_run_is_404(client, newsletter_audience):
    assert "There is no mailing run #2147483648." in client.get(PREVIEW, params={"run": 2**31}).text
    assert client.get(PREVIEW, params={"run": 999}).status_code == 404


def test_the_overview_and_run_pages_link_the_preview(client, newsletter_audience):
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing

    run_id = freeze_audience(get_mailing("newsletter"), dag_run_id="linked", engine=newsletter_audience)
    assert 'href="/segmail/mailings/newsletter/preview"' in client.get("/segmail/").text
    run_page = client.get(f"/segmail/runs/{run_id}").text
    assert f'href="/segmail/mailings/newsletter/preview?run={run_id}"' in run_page
    assert f"/segmail/mailings/newsletter/preview?run={run_id}&amp;contact=E1" in run_page


SMS_PREVIEW = "/segmail/mailings/sms_service_reminder/preview"


def test_an_sms_mailing_shows_its_text_encoding_and_parts(client):
    """No HTML, no headers: the text as the SMS sender renders it, with GSM-7/UCS-2 and parts."""
    answer = client.get(SMS_PREVIEW, params={"language": "de"})
    assert answer.status_code == 200
    page = PageParts(answer.text)
    assert page.texts["text-part"].startswith("Hallo Alex, Ihr Fahrzeug")
    assert page.frames == [] and 'id="headers"' not in answer.text
    length = re.search(r'<dd id="sms-length">(.*?)</dd>', answer.text, re.S).group(1)
    assert "GSM-7" in length or "gsm" in length.lower()
    assert "1 part" in length
    assert "Autohaus" in re.search(r'<dd id="sms-from">(.*?)</dd>', answer.text).group(1)
    fr = client.get(SMS_PREVIEW, params={"language": "fr", "contact": "E1"}).text  # body: a template file
    assert "Bonjour Anna" in fr and "sms-length" in fr


def test_an_sms_text_outside_gsm7_is_ucs2(client, newsletter_audience):
    from sqlalchemy import text

    with newsletter_audience.begin() as conn:
        conn.execute(text("UPDATE segmail_contacts SET first_name = 'Zoë 😀' WHERE external_id = 'E3'"))
    answer = client.get(SMS_PREVIEW, params={"contact": "E3"})
    length = re.search(r'<dd id="sms-length">(.*?)</dd>', answer.text, re.S).group(1)
    assert "UCS" in length.upper() and "because of" in length


def test_sms_template_errors_show_file_and_line(client, broken_include):
    sms = (broken_include / "mailings" / "sms_service_reminder.yaml").read_text()
    sms = sms.replace("Hi {{ contact.first_name }}", "Hi {{ contact.nickname }}")
    (broken_include / "mailings" / "broken_sms.yaml").write_text(sms)
    (broken_include / "templates" / "sms_service_reminder" / "fr.txt").write_text(
        "Bonjour\n{{ contact.x }}\n"
    )
    page = shown(client, "/segmail/mailings/broken_sms/preview", language="en")
    assert "no attribute 'nickname'" in page.texts["render-error"]
    assert "(in the message, line 1)" in page.texts["render-error"]
    page = shown(client, "/segmail/mailings/broken_sms/preview", language="fr")
    assert "(in sms_service_reminder/fr.txt, line 2)" in page.texts["render-error"]


def test_an_sms_template_file_that_cannot_be_read_is_said_not_a_500(client, broken_include):
    """Windows-1252 bytes where UTF-8 is expected: the e-mail preview always said so; the SMS one too."""
    (broken_include / "templates" / "sms_service_reminder" / "fr.txt").write_bytes(b"Gr\xfc\xdfe {{ x }}\n")
    answer = client.get(SMS_PREVIEW, params={"language": "fr"})
    assert answer.status_code == 200
    assert "UnicodeDecodeError" in PageParts(answer.text).texts["render-error"]
