"""The guideline as computable recommendations: knowledge, rules, cards."""

from __future__ import annotations

import os

from cds_service.guideline.engine import GuidelineEngine
from cds_service.guideline.knowledge import load_knowledge

__all__ = ["GuidelineEngine", "load_engine"]


def load_engine(site_policy_file: str | None = None) -> GuidelineEngine:
    """Load and validate the knowledge (+ site-policy overrides); ConfigError if invalid."""
    path = (
        site_policy_file
        if site_policy_file is not None
        else os.environ.get("CDS_SITE_POLICY_FILE", "")
    )
    return GuidelineEngine(load_knowledge(path or None))
