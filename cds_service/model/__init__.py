"""The service's model of a CDS Hooks call, without HTTP or FHIR access: what a call carries
(`types`), the services it is dispatched to (`registry`) and the record of what it did
(`events`, for the audit trail and metrics).

At the bottom of the service: it imports nothing of cds_service but `errors`, so the edge
(`hooks/`), FHIR access (`fhir/`), persistence, governance and operations all build on it.
"""
