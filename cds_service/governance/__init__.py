"""Clinical governance: capture for replay, de-identification, knowledge review.

Rollout modes live with the knowledge (cds_service.guideline), their counts in the report
(cds_service.persistence.report); this package holds the tools a CDS committee runs.
"""
