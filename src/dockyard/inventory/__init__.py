"""What an image holds: the packages found in an image platform's layers (its SBOM inventory), for the SBOM
documents and for vulnerability matching (``dockyard.vulns``)."""
