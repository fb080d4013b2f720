"""CDS Hooks 2.0 service for the inflammatory myopathy / muscle spasm guideline."""

from cds_service.app import create_app
from cds_service.version import __version__

__all__ = ["__version__", "create_app"]
