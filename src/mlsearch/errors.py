"""The whole exception tree. Each error carries its HTTP status and OpenSearch's error type name."""

from __future__ import annotations

from typing import Any


class MLSearchError(Exception):
    """Base of every error a client may see; rendered by api/render.py."""

    status: int = 500
    error_type: str = "exception"

    def __init__(self, reason: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        self.extra: dict[str, Any] = extra

    def body(self) -> dict[str, Any]:
        """The inner error object: type, reason and any extra fields OpenSearch adds."""
        return {"type": self.error_type, "reason": self.reason, **self.extra}

    def root_causes(self) -> list[dict[str, Any]]:
        """The envelope's `root_cause` list: this error itself, unless a subclass knows deeper causes."""
        return [{k: v for k, v in self.body().items() if k != "caused_by"}]


class IllegalArgumentError(MLSearchError):
    status = 400
    error_type = "illegal_argument_exception"


class ParsingError(MLSearchError):
    status = 400
    error_type = "parsing_exception"


class XContentParseError(MLSearchError):
    status = 400
    error_type = "x_content_parse_exception"


class JsonParseError(MLSearchError):
    status = 400
    error_type = "json_parse_exception"


class MapperParsingError(MLSearchError):
    status = 400
    error_type = "mapper_parsing_exception"


class ActionRequestValidationError(MLSearchError):
    status = 400
    error_type = "action_request_validation_exception"


class InvalidIndexNameError(MLSearchError):
    status = 400
    error_type = "invalid_index_name_exception"

    def __init__(self, index: str, why: str) -> None:
        super().__init__(f"Invalid index name [{index}], {why}", index=index, index_uuid="_na_")


class IndexNotFoundError(MLSearchError):
    status = 404
    error_type = "index_not_found_exception"

    def __init__(self, index: str) -> None:
        super().__init__(
            f"no such index [{index}]",
            index=index,
            **{"resource.id": index, "resource.type": "index_or_alias"},
            index_uuid="_na_",
        )


class ResourceAlreadyExistsError(MLSearchError):
    status = 400
    error_type = "resource_already_exists_exception"


class ResourceNotFoundError(MLSearchError):
    status = 404
    error_type = "resource_not_found_exception"


class VersionConflictError(MLSearchError):
    status = 409
    error_type = "version_conflict_engine_exception"


class DocumentMissingError(MLSearchError):
    status = 404
    error_type = "document_missing_exception"


class StatusError(MLSearchError):
    """OpenSearchStatusException: any status, type `status_exception`."""

    error_type = "status_exception"


class ContentTooLongError(MLSearchError):
    status = 413
    error_type = "content_too_long_exception"


class SettingsError(IllegalArgumentError):
    """An unknown, non-dynamic or invalid setting."""


class IndexClosedError(MLSearchError):
    status = 400
    error_type = "index_closed_exception"


class SearchPhaseExecutionError(MLSearchError):
    status = 400
    error_type = "search_phase_execution_exception"


class ShardFailuresError(SearchPhaseExecutionError):
    """SearchPhaseExecutionException "all shards failed": its status and root cause are the shard failure's."""

    def __init__(self, cause: MLSearchError, *, phase: str = "query") -> None:
        inner = cause.body()
        failure = {"shard": -1, "index": None, "reason": inner}
        super().__init__(
            "all shards failed",
            status=cause.status,
            phase=phase,
            grouped=True,
            failed_shards=[failure],
            caused_by=inner,
        )
        self.cause = cause

    def root_causes(self) -> list[dict[str, Any]]:
        return self.cause.root_causes()


class SearchContextMissingError(MLSearchError):
    """An unknown, expired or freed scroll context."""

    status = 404
    error_type = "search_context_missing_exception"


class RejectedExecutionError(MLSearchError):
    status = 429
    error_type = "rejected_execution_exception"


class QueryShardError(MLSearchError):
    status = 400
    error_type = "query_shard_exception"


class UnsupportedOperationError(MLSearchError):
    status = 400
    error_type = "unsupported_operation_exception"


class ParseError(MLSearchError):
    """OpenSearchParseException (`parse_exception`): what ingest pipeline configuration errors are."""

    status = 400
    error_type = "parse_exception"


class FailProcessorError(MLSearchError):
    """Raised by the `fail` ingest processor."""

    status = 500
    error_type = "fail_processor_exception"


class ScriptError(MLSearchError):
    status = 400
    error_type = "script_exception"
