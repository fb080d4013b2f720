"""CDS Hooks 2.0 service for the inflammatory myopathy / muscle spasm guideline."""

# The one place the version is written: pyproject.toml reads it, --version and /healthz show it.
__version__ = "0.1.0"

from cds_service.app import create_app

__all__ = ["__version__", "create_app"]
