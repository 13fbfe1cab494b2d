"""Supply chain of automated builds: the SBOM and SLSA provenance attestations of every built image, signed with the
namespace's managed key and attached as OCI referrers, and the image's signature (``docs/builds.md#provenance``)."""
