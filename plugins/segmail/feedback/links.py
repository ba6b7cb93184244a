"""The unsubscribe links of one mail: a signed https URL (one-click, RFC 8058) and a `mailto:`.

`List-Unsubscribe-Post` is promised only when the https URL is configured, because only then does
a POST to it really unsubscribe. Test mails get links signed for the TEST purpose: they open the
page but change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from segmail.addresses import safe_address
from segmail.errors import SegmailError
from segmail.feedback.tokens import TokenPurpose, TokenSigner

NOT_CONFIGURED = (
    "no unsubscribe link can be built: set SEGMAIL_PUBLIC_URL (the https address of "
    "`segmail serve-public`) and/or SEGMAIL_UNSUBSCRIBE_MAILTO (e.g. unsubscribe@your-domain)"
)
NO_KEY = (
    "no signing key for unsubscribe links: create the Airflow connection `segmail_signing` with the "
    "key as its password (`make demo` and `make airflow` generate one)"
)


@dataclass(frozen=True)
class MailLinks:
    url: str | None
    mailto: str | None

    @property
    def one_click(self) -> bool:
        return self.url is not None and self.url.startswith("https://")

    @property
    def list_unsubscribe(self) -> str:
        """The List-Unsubscribe header value: the https URL first, the mailto: alternative second."""
        return ", ".join(f"<{link}>" for link in (self.url, self.mailto and f"mailto:{self.mailto}") if link)

    @property
    def for_templates(self) -> str:
        """What `{{ unsubscribe_url }}` shows in the body: the page if there is one, else the mailto."""
        return self.url or f"mailto:{self.mailto}"


@dataclass(frozen=True)
class UnsubscribeLinks:
    signer: TokenSigner
    public_url: str | None
    mailto: str | None
    bounce_domain: str | None = None
    bounce_local_part: str = "bounces"

    def return_path(self, delivery_id: int) -> str | None:
        """The VERP envelope sender `bounces+TOKEN@bounce-domain`: a bounce names its delivery even
        when the report quotes nothing of the original. None without a bounce domain (the From
        address is the envelope sender then, and reports are matched by Message-ID)."""
        if not self.bounce_domain:
            return None
        token = self.signer.sign(TokenPurpose.BOUNCE, delivery_id)
        return f"{self.bounce_local_part}+{token}@{self.bounce_domain}"

    def for_delivery(self, delivery_id: int) -> MailLinks:
        return self._links(self.signer.sign(TokenPurpose.UNSUBSCRIBE, delivery_id))

    def for_test_mail(self) -> MailLinks:
        return self._links(self.signer.sign(TokenPurpose.TEST, 0))

    def _links(self, token: str) -> MailLinks:
        url = f"{self.public_url}/u/{token}" if self.public_url else None
        mailto = None
        if self.mailto:
            local, _, domain = self.mailto.partition("@")
            mailto = f"{local}+{token}@{domain}"
        return MailLinks(url, mailto)


def unsubscribe_links() -> UnsubscribeLinks:
    """From settings; a clear error when neither a public URL nor a mailto address is set."""
    from segmail import settings

    config = settings.current()
    if not config.public_url and not config.unsubscribe_mailto:
        raise SegmailError(NOT_CONFIGURED)
    if config.public_url and not config.public_url.startswith(("https://", "http://")):
        raise SegmailError(f"SEGMAIL_PUBLIC_URL must start with https:// (got {config.public_url!r})")
    if config.unsubscribe_mailto and safe_address(config.unsubscribe_mailto) is None:
        raise SegmailError(
            f"SEGMAIL_UNSUBSCRIBE_MAILTO is not an e-mail address: {config.unsubscribe_mailto!r}"
        )
    keys = settings.signing_keys()
    if not keys:
        raise SegmailError(NO_KEY)
    return UnsubscribeLinks(
        TokenSigner(keys, max_age_days=config.token_max_age_days),
        config.public_url,
        config.unsubscribe_mailto,
        bounce_domain=config.bounce_domain,
        bounce_local_part=config.bounce_local_part,
    )
