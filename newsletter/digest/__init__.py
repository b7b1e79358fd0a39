"""Digest: which stories go into an edition (selection), the edition itself (keyed by
segment and period, planned, rendered and sent), trials (dry run, test send, preview) and
translations. :func:`newsletter.digest.pipeline.run_digest` runs it all."""
