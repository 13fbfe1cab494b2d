"""What a push sets off on a new image, as one job per image (``analysis.tasks``): its layer index, its inventory
and SBOM referrer, then its vulnerability scan."""
