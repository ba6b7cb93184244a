"""Rendering: sandboxed Jinja, HTML autoescaped, templates compiled once per run and language.

The text/plain alternative of an HTML mail is derived from the HTML *template* once (tags turned
into line breaks, links into `text (url)`), so each message renders two compiled templates and no
HTML is parsed per message.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, Template
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment

from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing, templates_dir
from segmail.mailings.field_templates import FieldPlan, field_plan
from segmail.settings import include_dir

_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "hr",
    "section",
    "header",
    "footer",
    "blockquote",
}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self.href: str | None = None
        self.skip = 0

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag):  # noqa: ANN001
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "a" and self.href:
            if not self.href.startswith("mailto:"):
                self.parts.append(f" ({self.href})")
            self.href = None

    def handle_data(self, data):  # noqa: ANN001
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))

    def handle_entityref(self, name):  # noqa: ANN001
        if not self.skip:
            self.parts.append(unescape(f"&{name};"))

    def handle_charref(self, name):  # noqa: ANN001
        if not self.skip:
            self.parts.append(unescape(f"&#{name};"))


def html_to_text(html: str) -> str:
    """Readable plain text from HTML (also from an HTML Jinja template: its tags pass through)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _environment(*, html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=html,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class CompiledVariant:
    language: str
    subject: Template
    text: Template
    html: Template | None
    from_addr: str
    reply_to: str | None
    attachments: list[Attachment] = field(default_factory=list)
    plans: dict[str, FieldPlan | None] = field(default_factory=dict)  # by part: subject, text, html

    def render(self, context: dict) -> tuple[str, str, str | None]:
        """(subject, text, html) for one recipient."""
        subject = " ".join(self._part("subject", self.subject, context).split())  # no CR/LF in the header
        html = self._part("html", self.html, context) if self.html is not None else None
        return subject, self._part("text", self.text, context), html

    def _part(self, part: str, template: Template, context: dict) -> str:
        """Through the part's field plan when it has one and it can decide, else through Jinja."""
        plan = self.plans.get(part)
        if plan is not None and (rendered := plan.render(context)) is not None:
            return rendered
        return _render(template, context)


_TEMPLATE_GLOBALS: dict[int, tuple[Template, dict]] = {}


def _render(template: Template, context: dict) -> str:
    """`template.render(context)` without its per-call walk over the template's globals (a
    ChainMap): they are merged into a dict once per template. Same output, same sandbox; an error
    is raised as it is, without Jinja's traceback rewriting."""
    cached = _TEMPLATE_GLOBALS.get(id(template))
    if cached is None or cached[0] is not template:
        if len(_TEMPLATE_GLOBALS) > 1000:
            _TEMPLATE_GLOBALS.clear()
        cached = _TEMPLATE_GLOBALS[id(template)] = (template, dict(template.globals))
    globals_ = cached[1]
    context = new_context(
        template.environment, template.name, template.blocks, {**globals_, **context}, True, globals_
    )
    return template.environment.concat(template.root_render_func(context))


def load_attachment(relative: str) -> Attachment:
    path = (include_dir() / relative).resolve()
    if include_dir().resolve() not in path.parents or not path.is_file():
        raise SegmailError(f"attachment {relative!r} not found under {include_dir()}")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment(path.name, content_type, path.read_bytes())


def compile_variant(mailing: Mailing, language: str) -> CompiledVariant:
    """Compile one language's templates and load its attachments (once per run and language)."""
    from jinja2 import TemplateError

    variant = mailing.variants[language]
    html_env, text_env = _environment(html=True), _environment(html=False)
    try:
        subject = text_env.from_string(variant.subject)
        plans: dict[str, FieldPlan | None] = {"subject": field_plan(text_env, variant.subject)}
        if variant.html:
            html = html_env.get_template(variant.body)
            plans["html"] = field_plan(html_env, _source(html_env, variant.body))
            if variant.text_body:
                text = text_env.get_template(variant.text_body)
                plans["text"] = field_plan(text_env, _source(text_env, variant.text_body))
            else:
                source = html_to_text(_source(html_env, variant.body))
                text = text_env.from_string(source)
                plans["text"] = field_plan(text_env, source)
        else:
            html = None
            text = text_env.get_template(variant.body)
            plans["text"] = field_plan(text_env, _source(text_env, variant.body))
    except TemplateError as exc:
        raise SegmailError(f"mailing {mailing.slug}, language {language}: template error: {exc}") from None
    return CompiledVariant(
        language=language,
        subject=subject,
        text=text,
        html=html,
        from_addr=variant.from_ or mailing.from_,
        reply_to=variant.reply_to or mailing.reply_to,
        attachments=[load_attachment(a) for a in variant.attachments],
        plans=plans,
    )


def _source(environment: SandboxedEnvironment, name: str) -> str:
    return environment.loader.get_source(environment, name)[0]


_COMPILED: dict[tuple, CompiledVariant] = {}
_COMPILED_MAX = 64


def _file_stamp(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), stat.st_mtime_ns, stat.st_size)


def compiled_variant(mailing: Mailing, language: str) -> CompiledVariant:
    """`compile_variant` once per process for the same definition and files: the batches of a run
    in one worker share it, and a changed template or attachment is compiled again."""
    variant = mailing.variants[language]
    files = [templates_dir() / variant.body, *(include_dir() / a for a in variant.attachments)]
    if variant.text_body:
        files.append(templates_dir() / variant.text_body)
    key = (
        mailing.slug,
        language,
        variant.model_dump_json(),
        mailing.from_,
        mailing.reply_to,
        tuple(_file_stamp(path) for path in files),
    )
    found = _COMPILED.get(key)
    if found is None:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        found = _COMPILED[key] = compile_variant(mailing, language)
    return found


SAMPLE_UNSUBSCRIBE_URL = "https://unsubscribe.example/u/sample"


def message_context(
    *,
    contact: dict,
    segment: str | None,
    salesperson: dict | None,
    mailing: Mailing,
    unsubscribe_url: str = SAMPLE_UNSUBSCRIBE_URL,
) -> dict:
    """The variables a template sees. Plain dicts: the sandbox exposes no methods of our objects."""
    return {
        "contact": contact,
        "segment": {"name": segment or ""},
        "salesperson": salesperson or {"code": "", "name": "", "email": ""},
        "mailing": {"name": mailing.name, "slug": mailing.slug, "description": mailing.description},
        "unsubscribe_url": unsubscribe_url,
    }


SAMPLE_CONTACT = {
    "first_name": "Alex",
    "last_name": "Sample",
    "email": "alex.sample@example.com",
    "organization": "Sample GmbH",
    "account_number": "10000",
    "country_code": "DE",
    "external_id": "SAMPLE-1",
    "language": "de",
    "mobile": "+4915123456789",
}
