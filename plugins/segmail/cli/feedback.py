"""`segmail suppressions ...` and `segmail serve-public`: what comes back from recipients."""

from __future__ import annotations

import argparse

from segmail.cli.tables import print_rows

SUPPRESSION_COLUMNS = ("address", "reason", "source", "mailing_run_id", "created_at")
PUBLIC_APP = "segmail.web.public:create_public_app"


def cmd_suppressions(args: argparse.Namespace) -> int:
    from segmail.contacts import suppressions

    if args.action == "add":
        added = suppressions.add_suppression(address=args.address, reason=args.reason)
        print(f"{args.address} {'suppressed' if added else 'was already suppressed (kept as it was)'}")
    elif args.action == "remove":
        suppressions.remove_suppression(address=args.address)
        print(f"{args.address} removed from the suppression list (a contact's own opt-out stays)")
    else:
        if args.limit < 1:
            from segmail.errors import SegmailError

            raise SegmailError(f"--limit must be at least 1, not {args.limit}")
        print_rows(suppressions.list_suppressions(limit=args.limit), SUPPRESSION_COLUMNS, fmt=args.format)
    return 0


def cmd_serve_public(args: argparse.Namespace) -> int:
    """The public unsubscribe app on uvicorn until SIGTERM/Ctrl-C; it reads its key from the
    environment only (AIRFLOW_CONN_SEGMAIL_SIGNING), so say so at start rather than at the first click."""
    import uvicorn

    from segmail import settings
    from segmail.cli.database import require_database
    from segmail.errors import SegmailError

    if not settings.signing_keys(use_airflow=False):
        raise SegmailError(
            "serve-public needs the signing key in the environment: set AIRFLOW_CONN_SEGMAIL_SIGNING "
            '(e.g. {"conn_type": "generic", "password": "<key>"}), the same key the mailings sign with'
        )
    require_database(home_source=getattr(args, "home_source", "set by AIRFLOW_HOME"))
    config = settings.current()
    host, port = args.host or config.public_host, args.port or config.public_port
    reached = f" (recipients reach it as {config.public_url})" if config.public_url else ""
    print(f"segmail public app on http://{host}:{port}{reached}", flush=True)
    uvicorn.run(PUBLIC_APP, factory=True, host=host, port=port, server_header=False, log_level="info")
    return 0


def add_suppressions(sub: argparse._SubParsersAction) -> None:
    sup = sub.add_parser("suppressions", help="addresses never mailed again").add_subparsers(
        dest="action", required=True
    )
    listing = sup.add_parser("list", help="newest first")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.add_argument("--limit", type=int, default=100)
    add = sup.add_parser("add", help="suppress an address by hand")
    add.add_argument("address")
    add.add_argument("--reason", default="", help="why (kept with the entry)")
    remove = sup.add_parser("remove", help="lift a suppression")
    remove.add_argument("address")
    for p in (listing, add, remove):
        p.set_defaults(func=cmd_suppressions)


def add_serve_public(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve-public", help="the public unsubscribe app (uvicorn), apart from Airflow")
    serve.add_argument("--host", help="default SEGMAIL_PUBLIC_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default SEGMAIL_PUBLIC_PORT or 8090")
    serve.set_defaults(func=cmd_serve_public)
