"""FHIR access: allow-list, gateway, prefetch policy and the fixture FHIR server."""
