"""Field plans render exactly what sandboxed Jinja renders, and leave everything else to Jinja."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import StrictUndefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from segmail.mailings.field_templates import field_plan

ROOT = Path(__file__).resolve().parents[3]


def environment(*, html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=html, undefined=StrictUndefined, keep_trailing_newline=True)


CONTEXTS = [
    {
        "contact": {"first_name": "Zoë", "last_name": '<b>O\'Neil & "Co"</b>', "organization": ""},
        "salesperson": {"name": "Maria", "email": ""},
        "segment": {"name": "News{{ x }}"},
        "unsubscribe_url": "https://u.example/u/a?b=1&c=2",
    },
    {
        "contact": {"first_name": "", "last_name": "Smith", "organization": "ACME <GmbH>"},
        "salesperson": {"name": "", "email": "s@x.example"},
        "segment": {"name": ""},
        "unsubscribe_url": "mailto:u@x.example",
    },
]

PLANNABLE = [
    "Hello {{ contact.first_name }} {{ contact.last_name }}!",
    "{% if contact.organization %}For {{ contact.organization }}{% endif %}\n",
    "{% if not contact.organization %}none{% elif salesperson.email %}{{ salesperson.email }}"
    "{% else %}else{% endif %}",
    "{% if contact.first_name and salesperson.name or segment.name %}yes{% else %}no{% endif %}",
    "{# a comment #}{% raw %}{{ not a field }}{% endraw %} {{unsubscribe_url}}\n\n",
    "  {%- if contact.first_name -%}  trimmed  {%- endif %}  ",
    "no fields at all",
    "",
]


@pytest.mark.parametrize("html", [True, False])
@pytest.mark.parametrize("source", PLANNABLE)
def test_plans_render_what_jinja_renders(source: str, html: bool) -> None:
    env = environment(html=html)
    plan = field_plan(env, source)
    assert plan is not None
    for context in CONTEXTS:
        assert plan.render(context) == env.from_string(source).render(context)


@pytest.mark.parametrize("name", ["de.html", "en.html", "fr.html"])
def test_the_sample_newsletters_are_planned_and_render_the_same(name: str) -> None:
    source = (ROOT / "include" / "templates" / "newsletter" / name).read_text(encoding="utf-8")
    env = environment(html=True)
    plan = field_plan(env, source)
    assert plan is not None
    for context in CONTEXTS:
        assert plan.render(context) == env.from_string(source).render(context)


@pytest.mark.parametrize(
    "source",
    [
        "{{ contact.first_name | upper }}",
        "{{ 'literal' }}",
        "{% for x in contact %}{{ x }}{% endfor %}",
        "{{ contact.items }}",  # a dict method in Jinja, not the key
        "{{ contact._private }}",
        "{{ contact['first_name'] }}",
        "{{ range(3) }}",
        "{% set x = 1 %}{{ x }}",
        "{% if contact.first_name == 'A' %}a{% endif %}",
        "{% autoescape false %}{{ contact.last_name }}{% endautoescape %}",
    ],
)
def test_anything_beyond_fields_and_ifs_is_left_to_jinja(source: str) -> None:
    assert field_plan(environment(html=True), source) is None


def test_a_lookup_the_plan_does_not_make_gives_up() -> None:
    plan = field_plan(environment(html=False), "{{ contact.missing }}{{ contact.first_name.x }}")
    assert plan is not None
    assert plan.render(CONTEXTS[0]) is None
    assert plan.render({"contact": "not a dict"}) is None
    assert plan.render({"contact": {"missing": "m", "first_name": {"x": "X"}}}) == "mX"


def test_a_variant_with_a_missing_field_still_fails_as_jinja_says() -> None:
    """The plan gives up and Jinja raises StrictUndefined's error, as before plans existed."""
    from segmail.mailings.render import CompiledVariant

    env = environment(html=False)
    source = "Hi {{ contact.nickname }}"
    variant = CompiledVariant(
        language="en",
        subject=env.from_string("S"),
        text=env.from_string(source),
        html=None,
        from_addr="a@b.example",
        reply_to=None,
        plans={"subject": field_plan(env, "S"), "text": field_plan(env, source)},
    )
    with pytest.raises(UndefinedError, match="nickname"):
        variant.render(CONTEXTS[0])
    assert variant.render({"contact": {"nickname": "Z"}}) == ("S", "Hi Z", None)
