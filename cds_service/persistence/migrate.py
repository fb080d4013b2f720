"""Alembic, driven from code: the scripts ship inside the package so a wheel can migrate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = "cds_service.persistence:migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic Config with no alembic.ini: location from the package, URL from the engine."""
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
    head = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
        conn.rollback()
    return SchemaState(current=tuple(current), head=tuple(head))


def known_revisions(engine: Engine) -> set[str]:
    """Every revision this code ships (a database at another one is newer than the code)."""
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    return {script.revision for script in scripts.walk_revisions()}


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` in one transaction."""
    _run(engine, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, lambda cfg: command.downgrade(cfg, revision))


def _run(engine: Engine, action: Callable[[Config], None]) -> None:
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config)
