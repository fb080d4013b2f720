"""CDS Hooks 2.0 service for the inflammatory myopathy / muscle spasm guideline."""

from cds_service.app import create_app

__all__ = ["create_app"]
