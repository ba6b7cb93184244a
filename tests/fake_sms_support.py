"""A fake SMS gateway for unit and integration tests (GUIDE §3: a fake per interface), and an SMS
mailing definition to build tests on. KannelGateway (segmail.sms.kannel) is the real gateway; its
fixtures are in sms_support."""

from __future__ import annotations

from dataclasses import dataclass, field

from segmail.sms.gateway import SmsMessage, SmsSubmission, SubmitResult

ACCEPTED = SmsSubmission(result=SubmitResult.ACCEPTED, code=202, reply="0: Accepted for delivery")


class Interrupted(BaseException):
    """The task dies (killed worker, lost pod): not an error sending could catch."""


@dataclass
class FakeSmsGateway:
    """Records what it accepts. `answers[number]` is returned for that number (or raised, if it is an
    exception); `interrupt_after=n` kills the task right after the n-th accepted message, before
    its answer reaches segmail (the one message a crash may send twice)."""

    answers: dict[str, object] = field(default_factory=dict)
    interrupt_after: int | None = None
    accepted: list[SmsMessage] = field(default_factory=list)
    submitted: list[SmsMessage] = field(default_factory=list)
    opened: int = 0
    closed: int = 0
    is_open: bool = False

    def __enter__(self) -> FakeSmsGateway:
        self.opened += 1
        self.is_open = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.is_open:
            self.closed += 1
        self.is_open = False

    def submit(self, message: SmsMessage) -> SmsSubmission:
        assert self.is_open, "submit outside `with gateway`"
        self.submitted.append(message)
        answer = self.answers.get(message.to, ACCEPTED)
        if isinstance(answer, BaseException):
            raise answer
        if answer.result == SubmitResult.ACCEPTED:
            self.accepted.append(message)
            if self.interrupt_after is not None and len(self.accepted) >= self.interrupt_after:
                self.interrupt_after = None
                raise Interrupted(f"killed after {len(self.accepted)} accepted messages")
        return answer

    def reject(self, number: str, code: int = 403, reply: str = "Not routable. Do not try again.") -> None:
        self.answers[number] = SmsSubmission(result=SubmitResult.REJECTED, code=code, reply=reply)

    def busy(self, number: str, code: int = 503, reply: str = "Temporal failure, try again later.") -> None:
        self.answers[number] = SmsSubmission(result=SubmitResult.TRANSIENT, code=code, reply=reply)

    @property
    def numbers(self) -> list[str]:
        return [m.to for m in self.accepted]


def sms_mailing_data(**overrides) -> dict:
    """A valid SMS mailing definition as a dict (what a YAML file holds)."""
    return {
        "slug": "reminder",
        "name": "Reminder",
        "channel": "sms",
        "audience": {"segments": ["Newsletter"]},
        "sender": "Autohaus",
        "default_language": "en",
        "variants": {
            "en": {"text": "Hi {{ contact.first_name }}, your check is due. Reply STOP to opt out"},
            "de": {"text": "Hallo {{ contact.first_name }}, Ihr Service ist fällig. STOP zum Abmelden"},
        },
        **overrides,
    }


def sms_mailing(**overrides):
    from segmail.mailings.definition import Mailing

    return Mailing.model_validate(sms_mailing_data(**overrides))


# Contacts of an SMS run: one per skip reason, two sharing a number, one opted out of e-mail only.
SMS_AUDIENCE_CSV = (
    "External ID,Country Code,First Name,Last Name,Email,Mobile Number,Language,Segments,Email Opt Out,"
    "SMS Opt Out\n"
    "S1,AT,Anna,Huber,anna@example.at,0664 1234567,de-AT,Newsletter,,\n"
    "S2,DE,Bernd,Kurz,bernd@example.de,0151 23456789,en,Newsletter,yes,\n"
    "S3,DE,Clara,Kurz,clara@example.de,0151 23456789,de,Newsletter,,\n"
    "S4,DE,Dora,Ohne,dora@example.de,,de,Newsletter,,\n"
    "S5,FR,Émile,Stop,emile@example.fr,06 12 34 56 78,fr-FR,Newsletter,,yes\n"
    "S6,DE,Fritz,Teilt,fritz@example.de,0160 3456789,de,Newsletter,,\n"
    "S7,DE,Greta,Teilt,greta@example.de,0160 3456789,de,VIP,,ja\n"
    "S8,DE,Hans,Extern,hans@example.de,0170 1112223,de,VIP,,\n"
    "S9,CA,Zoë,Roy,zoe@example.ca,+1 416 555 0199,en-CA,Newsletter,,\n"
)
SMS_SENT_TO = {"S1": "+436641234567", "S2": "+4915123456789", "S9": "+14165550199"}


def seed_sms_audience(engine, folder):
    """Salesperson MB (with a mobile), segments Newsletter (MB) and VIP, and SMS_AUDIENCE_CSV."""
    from segmail.contacts import salespeople, segments
    from segmail.imports.pipeline import import_file

    salespeople.add_salesperson(
        code="MB", name="Maria Berger", email="maria@example.com", mobile="+43 664 9876543", engine=engine
    )
    segments.create_segment(name="Newsletter", salesperson="MB", engine=engine)
    segments.create_segment(name="VIP", engine=engine)
    path = folder / "sms.csv"
    path.write_text(SMS_AUDIENCE_CSV, encoding="utf-8")
    assert import_file(path, engine=engine).created == 9
    return engine
