"""The hub: repository metadata (descriptions, visibility, stars, pull counts), tag details with platforms,
search, and the audit-log reader — what the Hub API and `docker search` show over the registry's content."""
