"""The CDS Hooks 2.0.1 edge: routes, schemas, discovery registry, request parsing, prefetch
policy, body reading and the error-to-HTTP mapping.

Dependencies point one way: `types` at the bottom (plain data), then `registry`, `prefetch`,
`schemas`, `bodies`, `calls`, and `routes` on top. Nothing here is imported by the package
itself, so `import cds_service.hooks.types` loads only that module.
"""
