"""The one exception tree of ssi-plugin.

Every failure a user can cause or meet is an ``SSIError``; the command line
catches it once, prints ``TypeName: message`` on one line and exits with the
class's ``exit_code``. Subclasses carry the data a caller needs to react.

    SSIError                      exit 1
    ├── ConfigError               exit 2  bad flag, setting or file
    │   ├── ExtraMissing                  a feature whose pip extra is not installed (extra + missing module)
    │   └── OutputUnwritable              a file a job writes cannot be written: disk full, read-only (path + reason)
    ├── InputError                exit 2  a dataset, image, caption or request that cannot be used
    │   ├── InvalidIdentifier             a string that is not a canonical SSI (text + reason)
    │   └── AnnotationError               one item could not be annotated (record id + named reason)
    ├── EngineError               exit 3  the cluster
    │   ├── EngineUnreachable             nothing answers at the URL
    │   ├── EngineAuthError               401 / 403
    │   ├── UnsupportedEngine             not OpenSearch/Elasticsearch, or a version we do not support
    │   ├── EngineRequestError            the engine refused a request (status + reason)
    │   └── ShardsFailed                  a search answered without some shards (index + each shard's reason)
    ├── LocalNodeError            exit 4  the embedded local node
    │   └── PrerequisiteMissing           java or mvn not installed
    ├── ModelError                exit 5  a model folder, trie or generation problem
    └── PartialFailure            exit 6  the work finished but some items failed (count + where recorded)
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ssi_plugin.annotation.base import FailureReason


class SSIError(Exception):
    """Base of every error ssi-plugin raises on purpose."""

    exit_code = 1


class ConfigError(SSIError):
    exit_code = 2


class ExtraMissing(ConfigError):
    """An optional feature was asked for, but the pip extra that installs its packages was not."""

    def __init__(self, feature: str, *, extra: str, missing: str) -> None:
        super().__init__(f"{feature} needs the [{extra}] extra ({missing} is not installed): "
                         f"python -m pip install 'ssi-plugin[{extra}]'")
        self.feature = feature
        self.extra = extra
        self.missing = missing


class OutputUnwritable(ConfigError):
    """A file or folder a job writes (output, failure file, checkpoint) could not be written; ``reason`` is the system's."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason} (free some space, or write elsewhere)")
        self.path = str(path)
        self.reason = reason


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Raise ``OutputUnwritable`` naming ``path`` (or the file the system names) for an ``OSError`` inside the block."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or (errno.errorcode.get(exc.errno, "") if exc.errno else "") or str(exc)
        raise OutputUnwritable(exc.filename or path, reason) from None


class InputError(SSIError):
    exit_code = 2


class InvalidIdentifier(InputError):
    def __init__(self, text: object, reason: str) -> None:
        super().__init__(f"invalid identifier {text!r}: {reason}")
        self.text = text
        self.reason = reason


class AnnotationError(InputError):
    """One record that could not be annotated; ``reason`` is a stable name (``caption_missing``, ...)."""

    def __init__(self, reason: FailureReason, detail: str, *, record_id: str | None = None) -> None:
        where = f"{record_id}: " if record_id else ""
        super().__init__(f"{where}{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.record_id = record_id


class EngineError(SSIError):
    exit_code = 3


class EngineUnreachable(EngineError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"no search engine answers at {url}: {reason}")
        self.url = url
        self.reason = reason


class EngineAuthError(EngineError):
    def __init__(self, url: str, status: int) -> None:
        what = "credentials were rejected" if status == 401 else "the credentials lack permission"
        super().__init__(f"{url} answered {status}: {what} (check --api-key / --user / --password)")
        self.url = url
        self.status = status


class UnsupportedEngine(EngineError):
    pass


class EngineRequestError(EngineError):
    def __init__(self, method: str, path: str, status: int, reason: str, body: object = None) -> None:
        super().__init__(f"{method} {path} failed with {status}: {reason}")
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.body = body


class ShardsFailed(EngineError):
    """A search or scroll page that some shards did not answer: its hits are only part of the index."""

    def __init__(self, index: str, *, failed: int, total: int, reasons: list[str]) -> None:
        detail = "; ".join(reasons) if reasons else "the engine gave no reason"
        super().__init__(f"{failed} of {total} shards of {index} failed to answer, so its documents cannot all be read: {detail}")
        self.index = index
        self.failed = failed
        self.total = total
        self.reasons = reasons


class LocalNodeError(SSIError):
    exit_code = 4


class PrerequisiteMissing(LocalNodeError):
    pass


class ModelError(SSIError):
    exit_code = 5


class PartialFailure(SSIError):
    exit_code = 6

    def __init__(self, message: str, *, failed: int, recorded_at: str | None = None) -> None:
        super().__init__(message)
        self.failed = failed
        self.recorded_at = recorded_at


class ValidationProblems(Protocol):
    """pydantic's ``ValidationError``, or FastAPI's ``RequestValidationError`` (the same problems, under ``body``)."""

    def errors(self) -> Sequence[Any]: ...


def validation_problems(exc: ValidationProblems, *, clause: str | None = None, root: str | None = None) -> list[tuple[str, str]]:
    """``(field.path, sentence)`` of each problem, without pydantic's URLs; ``root``: a first path part to leave out.

    Plain sentences read ``field.path: message``. With ``clause``, the name of a search clause (``ssi``), they are
    phrased as the engines phrase a bad clause, so a search client gets the kind of error it knows:
    ``[ssi] query does not support [size]``, ``[ssi] requires [query]``, ``[ssi] [k] input should be ...``.
    """
    problems = []
    for error in exc.errors():
        path = list(error["loc"])
        if root is not None and path[:1] == [root]:
            path = path[1:]
        where = ".".join(str(part) for part in path)
        message = str(error.get("ctx", {}).get("error", error["msg"])) if error["type"] == "value_error" else error["msg"]
        if clause is None:
            sentence = f"{where}: {message}" if where else message
        elif error["type"] == "extra_forbidden":
            sentence = f"[{clause}] query does not support [{where}]"
        elif error["type"] == "missing":
            sentence = f"[{clause}] requires [{where or clause}]"
        elif not where:  # a rule over several fields names them itself
            sentence = f"[{clause}] {message}"
        else:
            sentence = f"[{clause}] [{where}] {message.lower()}"
        problems.append((where, sentence))
    return problems


def describe_validation_error(exc: ValidationProblems, *, clause: str | None = None) -> str:
    """One line for a validation error: each problem's sentence (``validation_problems``), joined by ``; ``."""
    return "; ".join(sentence for _, sentence in validation_problems(exc, clause=clause))


def searches_would_fail(error: SSIError) -> bool:
    """Whether a failed read of an index says a search of it would fail now too: no engine answering, or an engine
    that cannot search the index (a 5xx: a node restarting, shards not yet recovered; or shards failing)."""
    return (isinstance(error, EngineUnreachable | ShardsFailed)
            or (isinstance(error, EngineRequestError) and error.status >= 500))
