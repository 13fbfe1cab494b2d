"""Vulnerabilities: advisories imported from OSV data, matched against image inventories
(``dockyard.inventory``), reports per image platform, VEX and allowlists, and the pull policy on findings."""
