"""`edgebatch api`: serve the REST API, and manage its users and tokens.

edgebatch api                                  # serve ([api] host/port)
edgebatch api user add alice --role operator --tenant acme   # asks for the password
edgebatch api user list | remove NAME | passwd NAME | disable NAME
edgebatch api token create --name ci --role viewer --tenant '*'   # shown once
edgebatch api token create --name meter-7 --device acme/meter-7  # a device's ingest token
edgebatch api token list | revoke ID
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime, timedelta

ROLES = ("viewer", "operator", "admin")


def main(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(prog="edgebatch api", description="serve the REST API")
    sub = p.add_subparsers(dest="what")
    serve = sub.add_parser("serve", help="serve the API (the default)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    user = sub.add_parser("user", help="users who sign in to the dashboard")
    users = user.add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="add a user (password from the terminal or stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument(
        "--tenant", action="append", default=[], help="a tenant it sees (repeat; '*': all)"
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    users.add_parser("list", help="list users")
    for action in ("remove", "passwd", "disable", "enable"):
        one = users.add_parser(action, help=f"{action} a user")
        one.add_argument("name")
        if action == "passwd":
            one.add_argument("--password-stdin", action="store_true")
    token = sub.add_parser("token", help="bearer tokens for programs and devices")
    tokens = token.add_subparsers(dest="action", required=True)
    create = tokens.add_parser("create", help="create a token (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=ROLES, default="viewer")
    create.add_argument("--tenant", action="append", default=[])
    create.add_argument("--device", help="TENANT/DEVICE: a device's ingest-only token")
    create.add_argument("--user", help="owner: the token dies with the user")
    create.add_argument("--days", type=float, help="expires after this many days")
    tokens.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = tokens.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)
    args = p.parse_args(argv)

    from edgebatch.settings import load_settings

    settings = load_settings(config)
    if args.what in (None, "serve"):
        from edgebatch.api.server import serve as run

        return run(settings, host=getattr(args, "host", None), port=getattr(args, "port", None))
    from edgebatch.framework.state import StateStore

    with StateStore.from_settings(settings) as store:
        if args.what == "user":
            return _user(args, store, p)
        return _token(args, store, p)


def _password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("edgebatch api: the passwords differ")
    return first


def _tenants(given: list[str], p: argparse.ArgumentParser) -> list[str]:
    from edgebatch.edge.wire import NAME_RE

    for t in given:
        if t != "*" and not NAME_RE.fullmatch(t):
            p.error(f"--tenant {t!r} is not a tenant name ({NAME_RE.pattern}) or '*'")
    if not given:
        p.error("name the tenants it sees: --tenant NAME (repeat), or --tenant '*' for all")
    return given


def _user(args: argparse.Namespace, store, p: argparse.ArgumentParser) -> int:
    from edgebatch.api.security import hash_password

    me = f"cli:{getpass.getuser()}"
    if args.action == "add":
        tenants = _tenants(args.tenant, p)
        password = _password(args.password_stdin)
        if len(password) < 8:
            p.error("the password must have 8 or more characters")
        user = store.add_user(
            args.name, password_hash=hash_password(password), role=args.role, tenants=tenants
        )
        store.audit(me, "user.add", f"user:{user.name}", {"role": user.role, "tenants": tenants})
        print(f"user {user.name} ({user.role}; tenants {', '.join(user.tenants)}) added")
    elif args.action == "list":
        for u in store.list_users():
            state = " (disabled)" if u.disabled else ""
            print(f"{u.name:20} {u.role:9} {','.join(u.tenants)}{state}")
    elif args.action == "remove":
        if not store.remove_user(args.name):
            p.error(f"no user named {args.name!r}")
        store.audit(me, "user.remove", f"user:{args.name}")
        print(f"user {args.name} removed (with its sessions and tokens)")
    elif args.action == "passwd":
        store.update_user(args.name, password_hash=hash_password(_password(args.password_stdin)))
        store.audit(me, "user.passwd", f"user:{args.name}")
        print(f"password of {args.name} changed")
    else:
        store.update_user(args.name, disabled=args.action == "disable")
        store.audit(me, f"user.{args.action}", f"user:{args.name}")
        print(f"user {args.name} {args.action}d")
    return 0


def _token(args: argparse.Namespace, store, p: argparse.ArgumentParser) -> int:
    from edgebatch.api import security
    from edgebatch.edge.wire import NAME_RE

    me = f"cli:{getpass.getuser()}"
    if args.action == "list":
        for t in store.list_tokens():
            scope = f"device {t.device}" if t.device else f"{t.role} {','.join(t.tenants)}"
            state = " revoked" if t.revoked_at else ""
            used = f" last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else ""
            print(f"{t.id:5} {t.name:20} {t.prefix}... {scope}{used}{state}")
        return 0
    if args.action == "revoke":
        t = store.revoke_token(args.id)
        store.audit(me, "token.revoke", f"token:{t.id}", {"name": t.name})
        print(f"token {t.id} ({t.name}) revoked")
        return 0
    role, tenants, device = args.role, args.tenant, None
    if args.device:
        tenant, _, name = args.device.partition("/")
        if not NAME_RE.fullmatch(tenant) or not NAME_RE.fullmatch(name):
            p.error(f"--device {args.device!r} is not TENANT/DEVICE")
        role, tenants, device = "device", [tenant], f"{tenant}/{name}"
    else:
        tenants = _tenants(tenants, p)
    owner = None
    if args.user:
        found = store.get_user(args.user)
        if found is None:
            p.error(f"no user named {args.user!r}")
        owner = found.id
    expires = datetime.now(UTC) + timedelta(days=args.days) if args.days else None
    token = security.new_token()
    row = store.add_token(
        args.name,
        token_hash=security.token_hash(token),
        prefix=security.token_prefix(token),
        role=role,
        tenants=tenants,
        device=device,
        user_id=owner,
        created_by=me,
        expires_at=expires,
    )
    store.audit(me, "token.create", f"token:{row.id}", {"name": row.name, "role": role})
    print(
        f"token {row.id} ({row.name}, {device or role}); shown once, keep it safe:", file=sys.stderr
    )
    print(token)
    sys.stdout.flush()
    return 0
