"""Security: CDS Hooks JWT authentication, trusted issuers, rate limits and hostile input."""
