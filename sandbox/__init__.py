"""Local sandbox: real PostgreSQL and a GCS-compatible server on loopback, for demos and tests."""
