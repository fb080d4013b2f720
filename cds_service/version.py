"""The one place the version is written: pyproject.toml reads it; --version and /healthz show it."""

__version__ = "0.1.0"
