"""Alembic, driven from code: the scripts ship inside the package so a wheel can migrate.

Alembic (with Mako) adds about 8 MiB to a process, so it is imported only to migrate. The
start-up check needs no Alembic: it reads the revision ids from the scripts' source and the
database's `alembic_version` rows (a test checks both agree with Alembic's own reading).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = "cds_service.persistence:migrations"
VERSIONS_DIR = Path(__file__).with_name("migrations") / "versions"
# Alembic's default, which env.py keeps.
VERSION_TABLE = "alembic_version"


def alembic_config(engine: Engine) -> Config:
    """An Alembic Config with no alembic.ini: location from the package, URL from the engine."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


@dataclass(frozen=True)
class SchemaState:
    current: tuple[str, ...]
    head: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.head)

    @property
    def describe(self) -> str:
        current = ", ".join(self.current) or "no schema"
        return f"database at {current}, code needs {', '.join(self.head)}"


def schema_state(engine: Engine) -> SchemaState:
    """Which revision the database is at and which this code needs."""
    with engine.connect() as conn:
        current = current_revisions(conn)
        conn.rollback()
    return SchemaState(current=current, head=head_revisions())


def current_revisions(conn: Connection) -> tuple[str, ...]:
    """The revisions in the database's version table; none when it has no schema yet."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return ()
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    return tuple(str(row) for row in rows)


def shipped_revisions() -> dict[str, tuple[str, ...]]:
    """Every migration script's revision id -> the revision ids it follows."""
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        values = _constants(path)
        if isinstance(values.get("revision"), str):
            down = values.get("down_revision")
            revisions[values["revision"]] = (down,) if isinstance(down, str) else tuple(down or ())
    return revisions


def _constants(path: Path) -> dict[str, Any]:
    """Module-level `name = literal` assignments of a script, read without importing it."""
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target: ast.expr = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name) and node.value is not None:
            try:
                found[target.id] = ast.literal_eval(node.value)
            except (ValueError, TypeError):
                continue  # not a literal: not one of Alembic's identifiers
    return found


def head_revisions() -> tuple[str, ...]:
    """The revisions no other script follows: what this code needs the database at."""
    revisions = shipped_revisions()
    followed = {down for downs in revisions.values() for down in downs}
    return tuple(sorted(set(revisions) - followed))


def known_revisions() -> set[str]:
    """Every revision this code ships (a database at another one is newer than the code)."""
    return set(shipped_revisions())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` in one transaction."""
    from alembic import command

    _run(engine, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    _run(engine, lambda cfg: command.downgrade(cfg, revision))


def _run(engine: Engine, action: Callable[[Config], None]) -> None:
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config)
