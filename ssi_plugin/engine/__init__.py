"""Talking to a cluster (OpenSearch or Elasticsearch) and running the embedded local node."""

from ssi_plugin.engine.client import CALLER_HEADERS, BulkItemResult, EngineClient, caller_headers, connect
from ssi_plugin.engine.probe import ClusterInfo, probe

__all__ = ["CALLER_HEADERS", "BulkItemResult", "ClusterInfo", "EngineClient", "caller_headers", "connect", "probe"]
