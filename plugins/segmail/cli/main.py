"""The `segmail` console command. User mistakes end with a one-line `error: ...` and exit code 2.

Start-up stays well under a second: nothing heavy is imported before a handler runs, and the
database is found without importing Airflow (see `segmail.cli.database`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segmail.cli.database import HOME_RULE, choose_airflow_home, explain_database_error, require_database
from segmail.cli.feedback import add_serve_public, add_suppressions, cmd_serve_public
from segmail.cli.imports import add_import
from segmail.cli.sms import add_sms_urls, cmd_sms_urls
from segmail.cli.tables import format_table, print_rows

if TYPE_CHECKING:
    from segmail.mailings.definition import Mailing

SEGMENT_COLUMNS = ("name", "salesperson", "members", "description")


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from segmail.store.migrate import current_revision, upgrade

    upgrade()
    print(f"segmail database at revision {current_revision()}")
    return 0


def cmd_salespeople(args: argparse.Namespace) -> int:
    from segmail.contacts import salespeople

    if args.action == "add":
        person = salespeople.add_salesperson(
            code=args.code, name=args.name or args.code, email=args.email, mobile=args.mobile
        )
        print(f"salesperson {person.code} saved")
    else:
        print(format_table(salespeople.list_salespeople(), ("code", "name", "email", "mobile")))
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    from segmail.contacts import segments

    action = args.action
    if action == "create":
        segments.create_segment(name=args.name, salesperson=args.salesperson, description=args.description)
        print(f"segment {args.name!r} created")
    elif action == "rename":
        segments.rename_segment(old=args.old, new=args.new)
        print(f"segment {args.old!r} renamed to {args.new!r}")
    elif action == "delete":
        members = segments.delete_segment(name=args.name)
        print(f"segment {args.name!r} deleted; removed from {members} contacts (contacts kept)")
    elif action in ("assign", "unassign"):
        keys = segments.read_keys(Path(args.file))
        result = segments.assign_segment(name=args.name, keys=keys, remove=action == "unassign")
        verb = "added to" if action == "assign" else "removed from"
        print(f"{result.matched} contacts matched; {result.changed} {verb} {args.name!r}")
        for key in result.not_found:
            print(f"not found: {key}", file=sys.stderr)
    else:
        print(format_table(segments.list_segments(), SEGMENT_COLUMNS))
    return 0


def cmd_contacts(args: argparse.Namespace) -> int:
    from segmail.contacts import export, optouts

    if args.action == "export":
        if args.output:
            count = _export_to_file(Path(args.output), fmt=args.format, segment=args.segment)
            print(f"{count} contacts written to {args.output}", file=sys.stderr)
        else:
            export.export_contacts(sys.stdout, fmt=args.format, segment=args.segment)
        return 0
    opted_out = args.action == "opt-out"
    count = optouts.set_opt_out(key=args.key, opted_out=opted_out, source=args.source, sms=args.sms)
    channel = " of SMS" if args.sms else ""
    print(f"{count} contact(s) {'opted out' + channel if opted_out else 'opted in again' + channel}")
    return 0


def _export_to_file(path: Path, *, fmt: str, segment: str | None) -> int:
    """Write beside the target and rename at the end: a failed export (an unknown segment, a full
    disk) leaves no file behind and never truncates an existing one."""
    from segmail.contacts import export

    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = export.export_contacts(out, fmt=fmt, segment=segment)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def cmd_mailings(args: argparse.Namespace) -> int:
    from segmail.mailings.definition import load_mailings

    mailings, load_errors = load_mailings()
    problems = list(load_errors.values())  # each names its file and field
    if args.action == "list":
        rows = [
            {
                "slug": m.slug,
                "dag_id": m.dag_id,
                "name": m.name,
                "channel": m.channel,
                "schedule": m.schedule or "manual",
                "languages": ", ".join(m.variants),
                "audience": "; ".join(m.audience.segments),
            }
            for m in mailings.values()
        ]
        print(format_table(rows, ("slug", "dag_id", "name", "channel", "schedule", "languages", "audience")))
    else:
        problems += _validate(mailings.values())
        if args.dns:
            problems += _check_dns(mailings.values())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _validate(mailings: Iterable[Mailing]) -> list[str]:
    from segmail.mailings.check import validate_mailing

    problems = []
    for mailing in mailings:
        info: list[str] = []
        found = validate_mailing(mailing, info=info)
        problems += found
        for line in info:  # an SMS variant's encoding, characters and parts
            print(line)
        if not found:
            print(f"ok: {mailing.slug} ({', '.join(mailing.variants)})")
    return problems


def _check_dns(mailings: Iterable[Mailing]) -> list[str]:
    """SPF, DKIM key and DMARC of every From domain; a skipped check is said, not an error."""
    from segmail import settings
    from segmail.mailings.dns_check import check_mailings, resolver_for

    problems = []
    for report in check_mailings(mailings, lookup=resolver_for(settings.current().dns_server)):
        if report.skipped:
            print(report.skipped, file=sys.stderr)
        elif not report.problems:
            print(f"ok: DNS of {report.domain} (SPF, DKIM key, DMARC)")
        problems += report.problems
    return problems


def cmd_status(args: argparse.Namespace) -> int:
    from segmail.errors import NotFound
    from segmail.store import read
    from segmail.store.db import default_engine

    if args.tests:
        rows = read.test_mail_log(limit=args.limit)
        columns = ("id", "mailing", "language", "recipient", "status", "subject", "sent_at")
    elif args.run is not None:
        if read.mailing_run(default_engine(), args.run) is None:
            raise NotFound(f"no mailing run {args.run}; `segmail status` lists the runs")
        rows = read.run_deliveries(args.run, failed_only=args.failed)
        columns = (
            "id",
            "external_id",
            "email",
            "mobile_e164",  # an SMS run's number
            "language",
            "status",
            "reason",
            "smtp_code",
            "smtp_response",
        )
    else:
        rows = read.mailing_runs(mailing=args.mailing, limit=args.limit)
        columns = (
            "run",
            "mailing",
            "status",
            "sent",
            "failed",
            "skipped",
            "pending",
            "unsubscribed",
            "bounced_hard",
            "bounced_soft",
            "complained",
            "bounce_rate",
            "complaint_rate",
            "languages",
            "created_at",
        )
        for row in rows:
            row["languages"] = " ".join(
                f"{lang}:{sum(counts.get(s, 0) for s in ('sent', 'delivered', 'expired'))}/{sum(counts.values())}"
                for lang, counts in row["by_language"].items()
            )
    print_rows(rows, columns, fmt=args.format)
    return 0


def _add_db(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)


def _add_salespeople(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("salespeople", help="salespeople").add_subparsers(dest="action", required=True)
    add = sp.add_parser("add", help="add or update a salesperson")
    add.add_argument("code")
    add.add_argument("--name")
    add.add_argument("--email")
    add.add_argument("--mobile", help="international form, e.g. +43 664 1234567: SMS test messages go there")
    listing = sp.add_parser("list")
    for p in (add, listing):
        p.set_defaults(func=cmd_salespeople)


def _add_segments(sub: argparse._SubParsersAction) -> None:
    seg = sub.add_parser("segments", help="segments").add_subparsers(dest="action", required=True)
    create = seg.add_parser("create")
    create.add_argument("name")
    create.add_argument("--salesperson")
    create.add_argument("--description")
    rename = seg.add_parser("rename")
    rename.add_argument("old")
    rename.add_argument("new")
    delete = seg.add_parser("delete", help="delete a segment; its contacts are kept")
    delete.add_argument("name")
    listing = seg.add_parser("list")
    assign = seg.add_parser("assign", help="add contacts listed in a file (external IDs or e-mails)")
    unassign = seg.add_parser("unassign", help="remove contacts listed in a file from the segment")
    for p in (assign, unassign):
        p.add_argument("name")
        p.add_argument("--file", required=True)
    for p in (create, rename, delete, listing, assign, unassign):
        p.set_defaults(func=cmd_segments)


def _add_contacts(sub: argparse._SubParsersAction) -> None:
    con = sub.add_parser("contacts", help="contacts").add_subparsers(dest="action", required=True)
    export = con.add_parser("export")
    export.add_argument("--segment")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", "-o")
    export.set_defaults(func=cmd_contacts)
    for name in ("opt-out", "opt-in"):
        p = con.add_parser(name, help=f"{name} by external ID, e-mail or +mobile number")
        p.add_argument("key")
        p.add_argument("--source", default="cli")
        p.add_argument("--sms", action="store_true", help="the SMS opt-out (apart from the e-mail one)")
        p.set_defaults(func=cmd_contacts)


def _add_mailings(sub: argparse._SubParsersAction) -> None:
    mail = sub.add_parser("mailings", help="mailing definitions").add_subparsers(dest="action", required=True)
    mail.add_parser("list").set_defaults(func=cmd_mailings)
    validate = mail.add_parser(
        "validate", help="render every variant with strict variables, check attachments"
    )
    validate.add_argument(
        "--dns", action="store_true", help="also check SPF, the DKIM key and DMARC of each From domain"
    )
    validate.set_defaults(func=cmd_mailings)


def _add_status(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser("status", help="mailing runs and their mails")
    st.add_argument("mailing", nargs="?")
    st.add_argument("--run", type=int, help="list the mails of this run")
    st.add_argument("--failed", action="store_true", help="with --run: only failed mails")
    st.add_argument("--tests", action="store_true", help="the test mails sent")
    st.add_argument("--limit", type=int, default=20)
    st.add_argument("--format", choices=("table", "json"), default="table")
    st.set_defaults(func=cmd_status)


COMMANDS = (
    _add_db,
    add_import,
    _add_salespeople,
    _add_segments,
    _add_contacts,
    _add_mailings,
    _add_status,
    add_suppressions,
    add_serve_public,
    add_sms_urls,
)


# Commands that do not open the database, or (serve-public) check it themselves after their own checks.
WITHOUT_DATABASE = frozenset({cmd_db_upgrade, cmd_mailings, cmd_serve_public, cmd_sms_urls})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segmail", description="Scheduled segment mailings on Airflow.", epilog=HOME_RULE
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress to stderr (e.g. import phase timings)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(sub)
    return parser


def _configure_logging(*, verbose: bool) -> None:
    """segmail logs (phase timings, progress) go to stderr, never stdout, which carries the results."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from segmail.errors import SegmailError

    args = build_parser().parse_args(argv)
    _configure_logging(verbose=args.verbose)
    args.home_source = choose_airflow_home()
    try:
        if args.func not in WITHOUT_DATABASE:
            require_database(home_source=args.home_source)
        return args.func(args)
    except SegmailError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a database that is not set up or not reachable: say so in one line
        if explanation := explain_database_error(exc):
            print(f"error: {explanation}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
