"""Authentication: credentials (passwords, access tokens, robot secrets), login throttling, token-signing keys
and the JSON Web Tokens of Docker's token authentication."""
