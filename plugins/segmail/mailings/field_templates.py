"""A short way through templates that only print and test fields, rendered once per recipient.

Most mail templates are text with `{{ contact.first_name }}`-style fields and `{% if field %}`
blocks. For those, going through Jinja's runtime (a new context per render, the sandbox's attribute
check, an exception per dict field) costs more than the text itself. `field_plan` reads such a
template's syntax tree once and keeps it as a plan: text pieces, field paths and conditions. A plan
renders by dict lookups alone, with Jinja's escaping (autoescape) or `str` (text), so its output is
the same as Jinja's, character for character.

A plan is only made when everything in the template is one of those forms; any other construct
(filters, loops, calls, literals, macros, ...) leaves the template to Jinja. A plan gives up
(`None`) whenever a lookup is not a plain key of a plain dict — a missing field, a field that is not
a dict — and the caller renders with Jinja then, which raises its usual error. So a plan never
reaches an attribute of any object: it can do strictly less than the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import nodes
from jinja2.environment import Environment
from markupsafe import escape

_DICT_ATTRIBUTES = frozenset(dir(dict))  # `x.items` is the method in Jinja, not the key "items"

Path = tuple[str, ...]
# Plan steps: a str is output as it is; ("field", path) outputs a field; ("if", [(test, steps)], else)
# outputs the steps of the first true test. A test is ("field", path), ("not", test), ("and" | "or", a, b).
Step = str | tuple


class _GiveUp(Exception):
    """A lookup a plan does not make: Jinja renders the template instead."""


class FieldPlan:
    """A template as text pieces, fields and conditions; `render` is None when Jinja must decide."""

    def __init__(self, steps: list[Step], *, autoescape: bool) -> None:
        self.steps = steps
        self.convert: Callable[[object], str] = escape if autoescape else str

    def render(self, context: dict) -> str | None:
        out: list[str] = []
        try:
            self._run(self.steps, context, out)
        except _GiveUp:
            return None
        return "".join(out)

    def _run(self, steps: list[Step], context: dict, out: list[str]) -> None:
        for step in steps:
            if type(step) is str:
                out.append(step)
            elif step[0] == "field":
                out.append(self.convert(_lookup(context, step[1])))
            else:  # "if"
                for test, body in step[1]:
                    if _holds(test, context):
                        self._run(body, context, out)
                        break
                else:
                    self._run(step[2], context, out)


def _lookup(context: dict, path: Path) -> object:
    value: object = context
    for key in path:
        if type(value) is not dict or key not in value:
            raise _GiveUp
        value = value[key]
    return value


def _holds(test: tuple, context: dict) -> bool:
    kind = test[0]
    if kind == "field":
        return bool(_lookup(context, test[1]))
    if kind == "not":
        return not _holds(test[1], context)
    if kind == "and":
        return _holds(test[1], context) and _holds(test[2], context)
    return _holds(test[1], context) or _holds(test[2], context)


class _NotPlannable(Exception):
    pass


def field_plan(environment: Environment, source: str) -> FieldPlan | None:
    """The plan of a template source, or None when it uses anything beyond fields and ifs."""
    try:
        steps = _steps(environment.parse(source).body)
    except _NotPlannable:
        return None
    return FieldPlan(steps, autoescape=bool(environment.autoescape))


def _steps(body: list[nodes.Node]) -> list[Step]:
    steps: list[Step] = []
    for node in body:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    steps.append(child.data)
                else:
                    steps.append(("field", _path(child)))
        elif isinstance(node, nodes.If):
            branches = [(_test(node.test), _steps(node.body))]
            branches += [(_test(branch.test), _steps(branch.body)) for branch in node.elif_]
            steps.append(("if", branches, _steps(node.else_)))
        else:
            raise _NotPlannable
    return steps


def _test(node: nodes.Node) -> tuple:
    if isinstance(node, nodes.Not):
        return ("not", _test(node.node))
    if isinstance(node, nodes.And | nodes.Or):
        return ("and" if isinstance(node, nodes.And) else "or", _test(node.left), _test(node.right))
    return ("field", _path(node))


def _path(node: nodes.Node) -> Path:
    """`a.b.c` as ("a", "b", "c"); only names and attributes that are not dict methods or private."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return (node.name,)
    if isinstance(node, nodes.Getattr) and node.ctx == "load":
        if node.attr.startswith("_") or node.attr in _DICT_ATTRIBUTES:
            raise _NotPlannable
        return (*_path(node.node), node.attr)
    raise _NotPlannable
