"""The resumable-job core of ``annotate``, ``ingest`` and ``reindex``.

    Job          skip what is done, annotate in batches, bulk-index, record failures, progress, counts
    JobSummary   what every run reports (skipped, failed by reason, failure file, seconds)
    JsonLines    a JSON-lines file written and flushed line by line
    FailureLog   the failure file: one line per item, with its stage and reason
    prefetched   a producer in a background thread, joined when the block ends (Ctrl-C included)
    ssi_record   an annotation as an identified record, its identifier made unique
"""

from ssi_plugin.jobs.files import FailureLog, JsonLines
from ssi_plugin.jobs.job import Job, JobSummary, ssi_record
from ssi_plugin.jobs.prefetch import prefetched

__all__ = ["FailureLog", "Job", "JobSummary", "JsonLines", "prefetched", "ssi_record"]
