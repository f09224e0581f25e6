"""Writing images into an index: ingest a dataset, reindex an existing index."""

from ssi_plugin.indexing.ingest import IngestSummary, ensure_index, ingest

__all__ = ["IngestSummary", "ensure_index", "ingest"]
