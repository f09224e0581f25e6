"""Talking to a cluster (OpenSearch or Elasticsearch) and running the embedded local node."""

from ssi_plugin.engine.client import BulkItemResult, EngineClient, connect
from ssi_plugin.engine.probe import ClusterInfo, probe

__all__ = ["BulkItemResult", "ClusterInfo", "EngineClient", "connect", "probe"]
