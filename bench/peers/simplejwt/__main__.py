"""`python -m bench.peers.simplejwt db upgrade | tokens N`: migrate and create the bench user, or mint tokens."""

from __future__ import annotations

import argparse
import os

from bench.peers.simplejwt import SETTINGS_MODULE, USERNAME


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.simplejwt")
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="the database")
    db.add_argument("action", choices=["upgrade"], help="run the migrations and create the user `bench`")
    tokens = commands.add_parser("tokens", help="print N new refresh tokens of `bench`, one a line")
    tokens.add_argument("count", type=int)
    arguments = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    if arguments.command == "db":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if not users.filter(username=USERNAME).exists():
            users.create_user(USERNAME, password=os.environ["BENCH_PASSWORD"])
    else:
        from rest_framework_simplejwt.tokens import RefreshToken

        # for_user() records each token as outstanding, as the obtain view does, without a
        # password hash per token (Django's PBKDF2 costs about half a second here).
        user = users.get(username=USERNAME)
        print("\n".join(str(RefreshToken.for_user(user)) for _ in range(arguments.count)))


if __name__ == "__main__":
    main()
