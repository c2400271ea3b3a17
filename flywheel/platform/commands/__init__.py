"""The CLI's command groups: one module per group, each a thin door onto the platform services."""
