"""Query side: generated identifiers become exact and partial concept queries, fused into one ranking."""

from ssi_plugin.search.fusion import fuse, linear_fusion, reciprocal_rank_fusion
from ssi_plugin.search.options import SSIQuery
from ssi_plugin.search.searcher import SearchHit, SearchResult, SSISearcher

__all__ = ["SSIQuery", "SSISearcher", "SearchHit", "SearchResult", "fuse", "linear_fusion", "reciprocal_rank_fusion"]
