"""Request bodies of the ML model, group and predict APIs, validated with pydantic and turned into OpenSearch errors.

Unknown fields are ignored, as ML Commons does (documentation examples send extra ones); booleans sent as strings
("true") are coerced."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlsearch.errors import IllegalArgumentError, ParsingError

FUNCTION_NAMES = ("TEXT_EMBEDDING", "SPARSE_ENCODING", "SPARSE_TOKENIZE", "TEXT_SIMILARITY")
MODEL_FORMATS = ("ONNX", "TORCH_SCRIPT")
ACCESS_MODES = ("public", "private", "restricted")
FRAMEWORK_TYPES = ("SENTENCE_TRANSFORMERS", "HUGGINGFACE_TRANSFORMERS", "HUGGINGFACE_TRANSFORMERS_NEURON")
POOLING_MODES = {
    "mean": "MEAN",
    "mean_sqrt_len": "MEAN_SQRT_LEN",
    "max": "MAX",
    "weightedmean": "WEIGHTED_MEAN",
    "weighted_mean": "WEIGHTED_MEAN",
    "cls": "CLS",
    "lasttoken": "LAST_TOKEN",
    "last_token": "LAST_TOKEN",
    "none": "NONE",
}

B = TypeVar("B", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(
        extra="ignore", coerce_numbers_to_str=True, protected_namespaces=(), populate_by_name=True
    )


class AccessFields(_Body):
    access_mode: str | None = None
    backend_roles: list[str] | None = None
    add_all_backend_roles: bool | None = None

    @field_validator("access_mode")
    @classmethod
    def _mode(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in ACCESS_MODES:
            raise ValueError(f"Invalid access mode: {value}; expected one of public, private, restricted")
        return None if value is None else value.lower()

    def access_given(self) -> bool:
        return self.access_mode is not None or self.backend_roles is not None or self.add_all_backend_roles is not None


class ModelGroupBody(AccessFields):
    name: str | None = None
    description: str | None = None


class ModelConfigBody(_Body):
    model_type: str | None = None
    embedding_dimension: int | None = None
    framework_type: str | None = None
    pooling_mode: str | None = None
    normalize_result: bool | None = None
    model_max_length: int | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    all_config: str | None = None
    additional_config: dict[str, Any] | None = None

    @field_validator("framework_type")
    @classmethod
    def _framework(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if upper not in FRAMEWORK_TYPES:
            raise ValueError(f"Wrong framework type: {value}")
        return upper

    @field_validator("pooling_mode")
    @classmethod
    def _pooling(cls, value: str | None) -> str | None:
        if value is None:
            return None
        mode = POOLING_MODES.get(value.lower())
        if mode is None:
            raise ValueError(f"Wrong pooling method: {value}")
        return mode

    def to_record(self) -> dict[str, Any]:
        """As ML Commons echoes it: set fields only, `normalize_result` only when true."""
        record = self.model_dump(exclude_none=True)
        if record.get("normalize_result") is False:
            del record["normalize_result"]
        return record


class RegisterModelBody(AccessFields):
    name: str | None = None
    version: str | None = None
    description: str | None = None
    function_name: str | None = None
    model_format: str | None = None
    model_group_id: str | None = None
    url: str | None = None
    model_content_hash_value: str | None = None
    config: ModelConfigBody | None = Field(None, alias="model_config")
    is_enabled: bool | None = None
    deploy_setting: dict[str, Any] | None = None
    rate_limiter: dict[str, Any] | None = None
    deploy_model: bool | None = None
    total_chunks: int | None = None
    model_content_size_in_bytes: int | None = None

    @field_validator("model_group_id")
    @classmethod
    def _blank_group_is_none(cls, value: str | None) -> str | None:
        # opensearch-py-ml sends "" when no group is given; ML Commons treats it as absent.
        return value or None

    @field_validator("function_name")
    @classmethod
    def _function(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if upper not in FUNCTION_NAMES:
            raise ValueError(f"Unsupported function name for a local model: {value}")
        return upper

    @field_validator("model_format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if upper not in MODEL_FORMATS:
            raise ValueError(f"Wrong model format: {value}; expected ONNX or TORCH_SCRIPT")
        return upper


class UpdateModelBody(_Body):
    name: str | None = None
    description: str | None = None
    model_group_id: str | None = None
    is_enabled: bool | None = None
    config: ModelConfigBody | None = Field(None, alias="model_config")
    deploy_setting: dict[str, Any] | None = None
    rate_limiter: dict[str, Any] | None = None
    connector: dict[str, Any] | None = None
    connector_id: str | None = None


class UndeployBody(_Body):
    node_ids: list[str] | None = None
    model_ids: list[str] | None = None


class PredictBody(_Body):
    text_docs: list[str | None] | None = None
    query_text: str | None = None
    return_number: bool = True
    return_bytes: bool = False
    target_response: list[str] | None = None
    parameters: dict[str, Any] | None = None


def parse_body(cls: type[B], body: Any) -> B:
    """A validated body; a wrong shape or type gives an illegal_argument_exception naming the field."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        raise IllegalArgumentError(_message(exc)) from None


def _message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"[{where}] {message}" if where else message
