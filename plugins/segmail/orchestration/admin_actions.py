"""The actions of the `segments_admin` trigger form, each mapped onto a contacts function."""

from __future__ import annotations

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

ADMIN_ACTIONS = (
    "list_segments",
    "create_segment",
    "rename_segment",
    "delete_segment",
    "assign",
    "unassign",
    "set_segment_salesperson",
    "add_salesperson",
    "list_salespeople",
)


def run_action(
    *,
    action: str,
    segment: str = "",
    new_name: str = "",
    salesperson: str = "",
    description: str = "",
    keys: str = "",
    keys_file: str = "",
    salesperson_name: str = "",
    salesperson_email: str = "",
    engine: Engine | None = None,
) -> dict:
    """One admin action from the `segments_admin` trigger form; returns a small summary for XCom."""

    def need(value: str, label: str) -> str:
        if not value.strip():
            raise SegmailError(f"action {action!r} needs {label}")
        return value.strip()

    if action == "list_segments":
        return {"segments": list_segments(engine=engine)}
    if action == "list_salespeople":
        return {"salespeople": list_salespeople(engine=engine)}
    if action == "create_segment":
        create_segment(
            name=need(segment, "a segment name"),
            salesperson=salesperson or None,
            description=description or None,
            engine=engine,
        )
        return {"created": segment.strip()}
    if action == "rename_segment":
        rename_segment(old=need(segment, "the segment name"), new=need(new_name, "a new name"), engine=engine)
        return {"renamed": segment.strip(), "to": new_name.strip()}
    if action == "delete_segment":
        return {
            "deleted": segment.strip(),
            "memberships_removed": delete_segment(name=need(segment, "the segment name"), engine=engine),
        }
    if action == "set_segment_salesperson":
        set_segment_salesperson(
            name=need(segment, "the segment name"), salesperson=salesperson or None, engine=engine
        )
        return {"segment": segment.strip(), "salesperson": salesperson.strip().upper()}
    if action == "add_salesperson":
        person = add_salesperson(
            code=need(salesperson, "a salesperson code"),
            name=salesperson_name or salesperson,
            email=salesperson_email or None,
            engine=engine,
        )
        return {"salesperson": person.code}
    if action in ("assign", "unassign"):
        key_list = [k.strip() for k in keys.replace(",", "\n").splitlines() if k.strip()]
        if keys_file.strip():
            key_list += read_keys(Path(keys_file.strip()))
        if not key_list:
            raise SegmailError(f"action {action!r} needs keys (external IDs or e-mails) or a keys file")
        result = assign_segment(
            name=need(segment, "the segment name"), keys=key_list, remove=action == "unassign", engine=engine
        )
        return {"matched": result.matched, "changed": result.changed, "not_found": result.not_found[:100]}
    raise SegmailError(f"unknown action {action!r}; choose one of {', '.join(ADMIN_ACTIONS)}")
