"""An SMS broadcast end to end, on SQLite and PostgreSQL: 200 contacts in 3 languages imported into a
segment → frozen audience → batches through KannelGateway → Kannel → fakesmsc gets exactly one
message per number, in the right language and encoding → Kannel's delivery reports reach the real
public app (uvicorn) → every message `delivered`; a STOP from a phone opts its number out, and
the next run skips it."""

from __future__ import annotations

from segmail.contacts import segments
from segmail.imports.pipeline import import_file
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import plan_batches
from segmail.sms.gateway import SmsEncoding
from segmail.sms.kannel import gateway_for
from segmail.sms.send import send_sms_batch
from sms_support import activity_kinds, sms_opt_outs, statuses, wait_for
from sqlalchemy import text

LANGUAGES = ("de", "en", "fr")
TEXTS = {
    "de": "Hallo {{ contact.first_name }}, Ihr Service ist fällig. STOP zum Abmelden",
    "en": "Hi {{ contact.first_name }}, your check is due. Reply STOP to opt out",
    "fr": "Bonjour {{ contact.first_name }}, votre révision arrive. Répondez ARRÊT",  # Ê: UCS-2
}
CONTACTS = 200  # the last shares the first one's number; number 199 has only an e-mail address


def number(i: int) -> str:
    return f"+43676{1000000 + i}"  # numbers no other SMS test uses: a late reply cannot reach this test


def contacts_csv(tmp_path):
    lines = ["External ID,Country Code,First Name,Last Name,Mobile Number,Email,Language,Segments"]
    for i in range(1, CONTACTS + 1):
        mobile = {199: "", 200: number(1)}.get(i, number(i))
        email = f"k{i}@example.com" if i == 199 else ""
        lines.append(f"K{i},AT,Name{i},Kunde,{mobile},{email},{LANGUAGES[i % 3]},Kunden")
    path = tmp_path / "kunden.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def broadcast() -> Mailing:
    return Mailing.model_validate(
        {
            "slug": "kunden_sms",
            "name": "Kunden SMS",
            "channel": "sms",
            "audience": {"segments": ["Kunden"]},
            "sender": "Autohaus",
            "default_language": "en",
            "batch_size": 80,
            "variants": {lang: {"text": body} for lang, body in TEXTS.items()},
        }
    )


def send_run(mailing: Mailing, dag_run_id: str, engine) -> int:
    run = freeze_audience(mailing, dag_run_id=dag_run_id, engine=engine)
    for batch in plan_batches(run, batch_size=mailing.batch_size, engine=engine):
        send_sms_batch(batch["batch_id"], mailing=mailing, gateway=gateway_for("sms_default"), engine=engine)
    return run


def expected_text(i: int) -> str:
    lang = LANGUAGES[i % 3]
    return TEXTS[lang].replace("{{ contact.first_name }}", f"Name{i}")


def test_a_broadcast_reaches_each_number_once_reports_come_back_and_stop_is_honoured(
    kannel, engine, tmp_path
):
    segments.create_segment(name="Kunden", engine=engine)
    assert import_file(contacts_csv(tmp_path), engine=engine).created == CONTACTS
    mailing = broadcast()
    before = len(kannel.kannel.received())

    run = send_run(mailing, "sms-e2e-1", engine)

    got = kannel.kannel.wait_received(CONTACTS - 2, since=before)
    by_number = {sms.to: sms for sms in got}
    assert len(by_number) == CONTACTS - 2  # exactly one message per number
    for i in range(1, 199):  # K200 shares K1's number and K199 has none: both skipped
        sms = by_number[number(i)]
        assert (sms.text, sms.sender) == (expected_text(i), "Autohaus"), i
        assert sms.encoding == (SmsEncoding.UCS2 if LANGUAGES[i % 3] == "fr" else SmsEncoding.GSM7), i
    counts = wait_for(
        lambda: statuses(engine, run),
        until=lambda c: c.get("delivered") == CONTACTS - 2,
        what="a delivery report for every message",
    )
    assert counts == {"delivered": CONTACTS - 2, "skipped": 2}
    with engine.connect() as conn:
        answers = conn.execute(
            text(
                "SELECT smtp_code, smtp_response, sms_parts, COUNT(*) FROM segmail_deliveries"
                " WHERE mailing_run_id = :r AND status = 'delivered' GROUP BY smtp_code, smtp_response, sms_parts"
            ),
            {"r": run},
        ).all()
    # Reports that overtook the sender's commit waited for it: every row keeps Kannel's answer.
    assert [tuple(a) for a in answers] == [(202, "0: Accepted for delivery", 1, CONTACTS - 2)]
    assert len(activity_kinds(engine, "sms report")) == CONTACTS - 2

    # A STOP from the number that contacts K1 and K200 share: both opt out of SMS (not of e-mail).
    kannel.kannel.inject_mo(sender=number(1), text="stop")
    states = wait_for(lambda: sms_opt_outs(engine), until=lambda s: s["K1"][0], what="the STOP")
    assert states["K1"] == states["K200"] == (True, "sms stop", run, False)

    before = len(kannel.kannel.received())
    second = send_run(mailing, "sms-e2e-2", engine)
    got = kannel.kannel.wait_received(CONTACTS - 3, since=before)
    assert number(1) not in {sms.to for sms in got}
    with engine.connect() as conn:
        skipped = dict(
            conn.execute(
                text(
                    "SELECT c.external_id, d.reason FROM segmail_deliveries d"
                    " JOIN segmail_contacts c ON c.id = d.contact_id"
                    " WHERE d.mailing_run_id = :r AND d.status = 'skipped'"
                ),
                {"r": second},
            ).all()
        )
    assert set(skipped) == {"K1", "K199", "K200"} and skipped["K1"] == "opted out of SMS"
    import shutil
    try:
        wait_for(lambda: statuses(engine, second), until=lambda c: c.get("delivered") == CONTACTS - 3, timeout=15)
    except AssertionError:
        shutil.copytree(kannel.kannel.root, "/tmp/kx/kannel-debug", dirs_exist_ok=True)
        raise
    wait_for(
        lambda: statuses(engine, second),
        until=lambda c: c.get("delivered") == CONTACTS - 3,
        what="the second run's reports",
    )
