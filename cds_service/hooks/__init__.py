"""The CDS Hooks 2.0.1 edge: routes, schemas, request parsing, body reading and the services.

The top of the service: it builds on `cds_service.model` (hook-call data, registry, call
record), `fhir/` (prefetch policy) and `security/`; none of those imports it
(tests/test_import_graph.py). Within it, `schemas` and `bodies` are below `calls`, and
`routes` is on top. Nothing here is imported by the package itself, so importing one module
loads only what that module needs.
"""
