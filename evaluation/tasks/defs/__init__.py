"""Task definitions, one module per benchmark; discovered by the registry."""
