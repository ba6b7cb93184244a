"""The actions of the `segments_admin` trigger form, each mapped onto a contacts function.

`ADMIN_ACTIONS` (the form's choices, in order) is the keys of the dispatch table, so an action
cannot be offered without being implemented. Every action is one transaction in `contacts`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from segmail.contacts.salespeople import add_salesperson, list_salespeople
from segmail.contacts.segments import (
    assign_segment,
    create_segment,
    delete_segment,
    list_segments,
    read_keys,
    rename_segment,
    set_segment_salesperson,
)
from segmail.errors import SegmailError


@dataclass(frozen=True, kw_only=True)
class AdminForm:
    """The fields of the trigger form; empty strings for what the user left blank."""

    action: str
    segment: str = ""
    new_name: str = ""
    salesperson: str = ""
    description: str = ""
    keys: str = ""
    keys_file: str = ""
    salesperson_name: str = ""
    salesperson_email: str = ""
    salesperson_mobile: str = ""  # +international; where an SMS mailing's test message goes

    def need(self, value: str, label: str) -> str:
        if not value.strip():
            raise SegmailError(f"action {self.action!r} needs {label}")
        return value.strip()

    def segment_name(self) -> str:
        return self.need(self.segment, "the segment name")

    def key_list(self) -> list[str]:
        keys = [k.strip() for k in self.keys.replace(",", "\n").splitlines() if k.strip()]
        if self.keys_file.strip():
            keys += read_keys(Path(self.keys_file.strip()))
        if not keys:
            raise SegmailError(f"action {self.action!r} needs keys (external IDs or e-mails) or a keys file")
        return keys


def _list_segments(form: AdminForm, engine: Engine | None) -> dict:
    return {"segments": list_segments(engine=engine)}


def _create_segment(form: AdminForm, engine: Engine | None) -> dict:
    create_segment(
        name=form.need(form.segment, "a segment name"),
        salesperson=form.salesperson or None,
        description=form.description or None,
        engine=engine,
    )
    return {"created": form.segment.strip()}


def _rename_segment(form: AdminForm, engine: Engine | None) -> dict:
    rename_segment(old=form.segment_name(), new=form.need(form.new_name, "a new name"), engine=engine)
    return {"renamed": form.segment.strip(), "to": form.new_name.strip()}


def _delete_segment(form: AdminForm, engine: Engine | None) -> dict:
    removed = delete_segment(name=form.segment_name(), engine=engine)
    return {"deleted": form.segment.strip(), "memberships_removed": removed}


def _assign(form: AdminForm, engine: Engine | None, *, remove: bool = False) -> dict:
    keys = form.key_list()
    result = assign_segment(name=form.segment_name(), keys=keys, remove=remove, engine=engine)
    return {"matched": result.matched, "changed": result.changed, "not_found": result.not_found[:100]}


def _unassign(form: AdminForm, engine: Engine | None) -> dict:
    return _assign(form, engine, remove=True)


def _set_segment_salesperson(form: AdminForm, engine: Engine | None) -> dict:
    set_segment_salesperson(name=form.segment_name(), salesperson=form.salesperson or None, engine=engine)
    return {"segment": form.segment.strip(), "salesperson": form.salesperson.strip().upper()}


def _add_salesperson(form: AdminForm, engine: Engine | None) -> dict:
    person = add_salesperson(
        code=form.need(form.salesperson, "a salesperson code"),
        name=form.salesperson_name or form.salesperson,
        email=form.salesperson_email or None,
        mobile=form.salesperson_mobile.strip() or None,  # blank keeps a stored mobile
        engine=engine,
    )
    return {"salesperson": person.code}


def _list_salespeople(form: AdminForm, engine: Engine | None) -> dict:
    return {"salespeople": list_salespeople(engine=engine)}


_HANDLERS: dict[str, Callable[[AdminForm, Engine | None], dict]] = {
    "list_segments": _list_segments,
    "create_segment": _create_segment,
    "rename_segment": _rename_segment,
    "delete_segment": _delete_segment,
    "assign": _assign,
    "unassign": _unassign,
    "set_segment_salesperson": _set_segment_salesperson,
    "add_salesperson": _add_salesperson,
    "list_salespeople": _list_salespeople,
}
ADMIN_ACTIONS = tuple(_HANDLERS)


def run_action(*, engine: Engine | None = None, **fields: str) -> dict:
    """One admin action from the `segments_admin` trigger form; returns a small summary for XCom."""
    form = AdminForm(**fields)
    handler = _HANDLERS.get(form.action)
    if handler is None:
        raise SegmailError(f"unknown action {form.action!r}; choose one of {', '.join(ADMIN_ACTIONS)}")
    return handler(form, engine)
