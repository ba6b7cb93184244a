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
