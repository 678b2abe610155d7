"""`treadle db upgrade`: apply the store's schema migrations."""

from __future__ import annotations

import asyncio

import typer

from treadle.cli.options import DEFAULT_STORE, StoreOption
from treadle.cli.session import open_engine


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Database schema management.", no_args_is_help=True)
    group.command("upgrade")(upgrade)
    app.add_typer(group, name="db")


def upgrade(store: StoreOption = DEFAULT_STORE) -> None:
    """Apply every pending migration to the store (also done whenever a store opens)."""
    engine = open_engine(store)

    async def main() -> None:
        await engine.open()
        await engine.close()

    asyncio.run(main())
    typer.echo(f"{store}: schema is up to date")
