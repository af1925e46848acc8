"""The security layer: risk rules with reasons, security-event grouping and AI enrichment."""
