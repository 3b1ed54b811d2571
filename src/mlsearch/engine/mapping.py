"""Index mappings: validation, dynamic mapping of new fields, additive merges, and the flat table of leaf fields."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlsearch.engine import dates, dynamic_templates, semantic
from mlsearch.engine.analysis import check_analyzer
from mlsearch.engine.knn_mapping import check_knn_mapping, validate_knn_vector
from mlsearch.errors import IllegalArgumentError, MapperParsingError

__all__ = ["Field", "Mappings", "ParsedDocument", "check_knn_mapping", "convert", "iter_leaves", "parse_document"]

INTEGER_TYPES = {"long": 2**63, "integer": 2**31, "short": 2**15, "byte": 2**7, "unsigned_long": 2**64}
FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
# Types whose values live only in _source for now (their search comes with later features).
STORED_ONLY_TYPES = {"knn_vector", "rank_features", "rank_feature", "binary", "geo_point", "geo_shape", "flat_object"}
OBJECT_TYPES = {"object", "nested"}
ALIASED_TYPES = {"match_only_text": "text", "wildcard": "keyword", "constant_keyword": "keyword", "date_nanos": "date"}

_COMMON = {"index", "store", "doc_values", "boost", "copy_to", "fields", "meta", "null_value"}
_PARAMS: dict[str, set[str]] = {
    "text": _COMMON
    | {
        "analyzer",
        "search_analyzer",
        "search_quote_analyzer",
        "norms",
        "similarity",
        "position_increment_gap",
        "fielddata",
        "index_options",
        "term_vector",
        "index_prefixes",
        "index_phrases",
        "eager_global_ordinals",
        "fielddata_frequency_filter",
    },
    "keyword": _COMMON
    | {
        "ignore_above",
        "normalizer",
        "similarity",
        "eager_global_ordinals",
        "split_queries_on_whitespace",
        "index_options",
        "norms",
    },
    "numeric": _COMMON | {"coerce", "ignore_malformed", "scaling_factor"},
    "boolean": _COMMON,
    "date": _COMMON | {"format", "locale", "ignore_malformed", "print_format"},
    "ip": _COMMON | {"ignore_malformed"},
    "object": {"properties", "dynamic", "enabled", "include_in_parent", "include_in_root", "type"},
    "knn_vector": {
        "dimension",
        "data_type",
        "space_type",
        "method",
        "mode",
        "compression_level",
        "model_id",
        "doc_values",
        "store",
        "index",
    },
    "rank_features": {"positive_score_impact"},
    "rank_feature": {"positive_score_impact"},
    "binary": {"doc_values", "store"},
    "geo_point": {"ignore_malformed", "ignore_z_value", "null_value", "doc_values", "store", "index"},
    "geo_shape": {"ignore_malformed", "ignore_z_value", "orientation", "coerce", "doc_values"},
    "flat_object": {"doc_values", "store", "index"},
}
_TOP_LEVEL = {
    "properties",
    "dynamic",
    "_source",
    "_meta",
    "_routing",
    "date_detection",
    "numeric_detection",
    "dynamic_templates",
    "dynamic_date_formats",
    "_doc_count",
    "_field_names",
}


@dataclass(frozen=True, slots=True)
class Field:
    """A leaf field that gets indexed: `title` or a multi-field such as `title.keyword`."""

    path: str
    source_path: str
    type: str
    analyzer: str = "standard"
    search_analyzer: str = "standard"
    ignore_above: int | None = None
    scaling_factor: float | None = None
    date_format: str | None = None
    indexed: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def base_type(self) -> str:
        """The family of the type: text, keyword, integer, float, boolean, date, ip or a stored-only type."""
        if self.type in INTEGER_TYPES:
            return "integer"
        if self.type in FLOAT_TYPES:
            return "float"
        return self.type


@dataclass(frozen=True, slots=True)
class Mappings:
    """The mapping of one index as JSON (what `GET _mapping` shows) and its table of leaf fields."""

    tree: Mapping[str, Any]
    fields: Mapping[str, Field]
    objects: frozenset[str]

    @classmethod
    def parse(cls, body: Any) -> Mappings:
        """Validate a `mappings` body as given to create index or put mapping."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise MapperParsingError("Failed to parse mapping: Expected map for property [mappings]")
        if set(body) == {"_doc"} and isinstance(body["_doc"], dict):
            body = body["_doc"]
        for key in body:
            if key not in _TOP_LEVEL:
                raise MapperParsingError(f"Root mapping definition has unsupported parameters:  [{key} : {body[key]}]")
        tree = copy.deepcopy(body)
        _check_dynamic(tree.get("dynamic"), "_doc")
        if "dynamic_templates" in tree:
            dynamic_templates.validate(tree["dynamic_templates"])
        props = tree.setdefault("properties", {})
        _validate_properties(props, "")
        return cls.from_tree(tree)

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Mappings:
        leaves: dict[str, Field] = {}
        objects: set[str] = set()
        _collect(tree.get("properties", {}), "", leaves, objects)
        return cls(tree=tree, fields=leaves, objects=frozenset(objects))

    @property
    def dynamic(self) -> str:
        return str(self.tree.get("dynamic", "true")).lower()

    def to_json(self) -> dict[str, Any]:
        out = copy.deepcopy(dict(self.tree))
        if not out.get("properties"):
            out.pop("properties", None)
        return out

    def merge(self, other: Mappings) -> Mappings:
        """Add other's fields to ours; changing the type of an existing field is refused."""
        tree = copy.deepcopy(dict(self.tree))
        for key, value in other.tree.items():
            if key == "dynamic_templates":
                tree[key] = dynamic_templates.merge(tree.get(key, []), value)
            elif key != "properties":
                tree[key] = copy.deepcopy(value)
        tree["properties"] = _merge_properties(tree.get("properties", {}), other.tree.get("properties", {}), "")
        return Mappings.from_tree(tree)

    def field(self, path: str) -> Field | None:
        return self.fields.get(path)

    def fields_matching(self, pattern: str) -> list[Field]:
        """Fields named by a pattern with `*` wildcards, as multi_match and query_string take them."""
        if "*" not in pattern:
            found = self.fields.get(pattern)
            return [found] if found else []
        import fnmatch

        return [f for p, f in self.fields.items() if fnmatch.fnmatchcase(p, pattern)]

    def object_kind(self, path: str) -> str | None:
        """`nested` or `object` for a mapped object path, else None."""
        props: Mapping[str, Any] = self.tree.get("properties", {})
        spec: Mapping[str, Any] | None = None
        for name in path.split("."):
            spec = props.get(name) if isinstance(props, Mapping) else None
            if not isinstance(spec, Mapping):
                return None
            props = spec.get("properties", {})
        kind = None if spec is None else spec.get("type", "object")
        return kind if kind in OBJECT_TYPES else None

    def type_of(self, path: str) -> str | None:
        leaf = self.fields.get(path)
        if leaf is not None:
            return leaf.type
        return "object" if path in self.objects else None


def _check_dynamic(value: Any, where: str) -> None:
    if value is None:
        return
    if str(value).lower() not in ("true", "false", "strict", "runtime"):
        raise MapperParsingError(f"Could not convert [{where}.dynamic] to boolean")


def _validate_properties(props: Any, prefix: str) -> None:
    if not isinstance(props, dict):
        raise MapperParsingError(f"Expected map for property [properties] on field [{prefix or '_doc'}]")
    for name, spec in props.items():
        path = f"{prefix}{name}"
        if not name or name.startswith(".") or name.endswith("."):
            raise MapperParsingError(f"field name cannot be an empty string or contain only dots [{path}]")
        if not isinstance(spec, dict):
            raise MapperParsingError(
                f"Expected map for property [type] on field [{path}] but got a class java.lang.String"
            )
        _validate_field(spec, path)


def _validate_field(spec: dict[str, Any], path: str) -> None:
    ftype = spec.get("type", "object" if "properties" in spec else None)
    if ftype is None:
        raise MapperParsingError(f"No type specified for field [{path}]")
    if not isinstance(ftype, str):
        raise MapperParsingError(f"No handler for type [{ftype}] declared on field [{path}]")
    if ftype == semantic.TYPE:
        _validate_semantic(spec, path)
        return
    family = _family(ftype)
    if family is None:
        raise MapperParsingError(f"No handler for type [{ftype}] declared on field [{path}]")
    allowed = _PARAMS[family] | {"type"}
    for key in spec:
        if key not in allowed:
            raise MapperParsingError(f"unknown parameter [{key}] on mapper [{path}] of type [{ftype}]")
    if family == "object":
        _check_dynamic(spec.get("dynamic"), path)
        _validate_properties(spec.setdefault("properties", {}) if "properties" in spec else {}, f"{path}.")
        return
    for key in ("analyzer", "search_analyzer", "search_quote_analyzer"):
        if key in spec:
            check_analyzer(str(spec[key]), path)
    if ftype == "scaled_float" and not isinstance(spec.get("scaling_factor"), int | float):
        raise MapperParsingError(f"Field [scaling_factor] is required for [{path}]")
    if "ignore_above" in spec and not isinstance(spec["ignore_above"], int):
        raise MapperParsingError(f"Failed to parse value [{spec['ignore_above']}] as only [int] for [ignore_above]")
    if family == "date" and "format" in spec:
        dates.check_format(str(spec["format"]), path)
    if ftype == "knn_vector":
        validate_knn_vector(spec, path)
    subfields = spec.get("fields")
    if subfields is not None:
        if not isinstance(subfields, dict):
            raise MapperParsingError(f"Expected map for property [fields] on field [{path}]")
        for sub, sub_spec in subfields.items():
            sub_type = str(sub_spec.get("type", "")) if isinstance(sub_spec, dict) else ""
            if sub_type == semantic.TYPE:
                raise MapperParsingError(f"Type [semantic] cannot be used in multi field [{path}.{sub}]")
            if _family(sub_type) in (None, "object"):
                raise MapperParsingError(f"Type [object] cannot be used in multi field [{path}.{sub}]")
            _validate_field(sub_spec, f"{path}.{sub}")


def _validate_semantic(spec: dict[str, Any], path: str) -> None:
    """A semantic field: its own parameters, then the rest as a field of its raw type."""
    semantic.validate(spec, path)
    raw = semantic.raw_type(spec)
    allowed = semantic.PARAMS | _PARAMS[_family(raw) or "text"]
    for key in spec:
        if key not in allowed:
            raise MapperParsingError(f"unknown parameter [{key}] on mapper [{path}] of type [semantic]")
    _validate_field(semantic.raw_spec(spec), path)


def _family(ftype: str) -> str | None:
    ftype = ALIASED_TYPES.get(ftype, ftype)
    if ftype in INTEGER_TYPES or ftype in FLOAT_TYPES:
        return "numeric"
    if ftype in OBJECT_TYPES:
        return "object"
    if ftype in _PARAMS:
        return ftype
    return None


def _collect(props: Mapping[str, Any], prefix: str, out: dict[str, Field], objects: set[str]) -> None:
    for name, spec in props.items():
        path = f"{prefix}{name}"
        ftype = spec.get("type", "object")
        if ftype in OBJECT_TYPES:
            objects.add(path)
            if spec.get("enabled", True) not in (False, "false"):
                _collect(spec.get("properties", {}), f"{path}.", out, objects)
            continue
        out[path] = _leaf(spec, path, path)
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = _leaf(sub_spec, f"{path}.{sub}", path)


def _leaf(spec: Mapping[str, Any], path: str, source_path: str) -> Field:
    params = spec  # a semantic field keeps its own spec (field mapping shows `semantic`) ...
    if spec.get("type") == semantic.TYPE:
        spec = semantic.raw_spec(spec)  # ... but is indexed as its raw type; the embedding is a sibling field
    ftype = ALIASED_TYPES.get(spec["type"], spec["type"])
    analyzer = str(spec.get("analyzer", "standard"))
    return Field(
        path=path,
        source_path=source_path,
        type=ftype,
        analyzer="keyword" if ftype == "keyword" else analyzer,
        search_analyzer="keyword" if ftype == "keyword" else str(spec.get("search_analyzer", analyzer)),
        ignore_above=spec.get("ignore_above"),
        scaling_factor=spec.get("scaling_factor"),
        date_format=spec.get("format"),
        indexed=spec.get("index", True) not in (False, "false") and ftype not in STORED_ONLY_TYPES,
        params=params,
    )


def _merge_properties(old: dict[str, Any], new: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    merged = dict(old)
    for name, spec in new.items():
        path = f"{prefix}{name}"
        if name not in merged:
            merged[name] = copy.deepcopy(spec)
            continue
        before = merged[name]
        old_type = before.get("type", "object")
        new_type = spec.get("type", "object")
        if old_type != new_type:
            raise IllegalArgumentError(f"mapper [{path}] cannot be changed from type [{old_type}] to [{new_type}]")
        if old_type in OBJECT_TYPES:
            combined = dict(before)
            combined.update({k: v for k, v in spec.items() if k != "properties"})
            combined["properties"] = _merge_properties(
                before.get("properties", {}), spec.get("properties", {}), f"{path}."
            )
            merged[name] = combined
            continue
        merged[name] = _merge_leaf(before, spec, path)
    return merged


# Parameters that OpenSearch lets a put-mapping change on an existing field.
_UPDATABLE = {
    "ignore_above",
    "search_analyzer",
    "search_quote_analyzer",
    "boost",
    "meta",
    "fields",
    "null_value",
    "ignore_malformed",
    "coerce",
    "eager_global_ordinals",
    "fielddata",
}


def _merge_leaf(before: dict[str, Any], spec: Mapping[str, Any], path: str) -> dict[str, Any]:
    combined = dict(before)
    for key, value in spec.items():
        if key == "fields":
            fields = dict(before.get("fields", {}))
            for sub, sub_spec in value.items():
                if sub in fields and fields[sub].get("type") != sub_spec.get("type"):
                    raise IllegalArgumentError(
                        f"mapper [{path}.{sub}] cannot be changed from type [{fields[sub].get('type')}] "
                        f"to [{sub_spec.get('type')}]"
                    )
                fields[sub] = copy.deepcopy(sub_spec)
            combined["fields"] = fields
        elif before.get(key, _MISSING) != value:
            updatable = _UPDATABLE | semantic.UPDATABLE if before.get("type") == semantic.TYPE else _UPDATABLE
            if key not in updatable:
                raise IllegalArgumentError(
                    f"Mapper for [{path}] conflicts with existing mapper:\n\tCannot update parameter [{key}] "
                    f"from [{before.get(key)}] to [{value}]"
                )
            combined[key] = value
    return combined


_MISSING = object()


# ---- documents -> indexable values -------------------------------------------------------------------


@dataclass(slots=True)
class ParsedDocument:
    """The indexable values of one document, per leaf field path, and a mapping grown by dynamic fields."""

    values: dict[str, list[Any]]
    mappings: Mappings | None  # set when the document added fields


def parse_document(mappings: Mappings, source: Any, doc_id: str) -> ParsedDocument:
    """Convert a document's values by its mapping, mapping unknown fields as OpenSearch's dynamic mapping does."""
    if not isinstance(source, dict):
        raise MapperParsingError("failed to parse, document is empty" if not source else "failed to parse")
    walker = _Walker(mappings, doc_id)
    walker.walk_object(source, mappings.tree.get("properties", {}), "", mappings.dynamic)
    grown = Mappings.from_tree(walker.tree) if walker.tree is not None else None
    return ParsedDocument(values=walker.values, mappings=grown)


class _Walker:
    def __init__(self, mappings: Mappings, doc_id: str) -> None:
        self.base = mappings
        self.doc_id = doc_id
        self.values: dict[str, list[Any]] = {}
        self.tree: dict[str, Any] | None = None  # copied on the first dynamic addition

    def walk_object(self, obj: Mapping[str, Any], props: Mapping[str, Any], prefix: str, dynamic: str) -> None:
        for name, value in obj.items():
            if not isinstance(name, str) or not name.strip("."):
                raise MapperParsingError("field name cannot be an empty string")
            if "." in name:
                # {"a.b": 1} is the same field as {"a": {"b": 1}}.
                head, rest = name.split(".", 1)
                self.walk_object({head: {rest: value}}, props, prefix, dynamic)
                continue
            path = f"{prefix}{name}"
            spec = props.get(name)
            if spec is None:
                spec = self._dynamic(path, value, dynamic)
                if spec is None:
                    continue
                props = self._props_for(prefix)
            self.walk_value(path, value, spec, dynamic)

    def walk_value(self, path: str, value: Any, spec: Mapping[str, Any], dynamic: str) -> None:
        ftype = spec.get("type", "object")
        if ftype in OBJECT_TYPES:
            if spec.get("enabled", True) in (False, "false"):
                return
            inner_dynamic = str(spec.get("dynamic", dynamic)).lower()
            for item in value if isinstance(value, list) else [value]:
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise MapperParsingError(
                        f"object mapping for [{path}] tried to parse field [{path.rsplit('.', 1)[-1]}] as object, "
                        f"but found a concrete value"
                    )
                self.walk_object(item, self._props_for(f"{path}."), f"{path}.", inner_dynamic)
            return
        leaf = self.base.fields.get(path) or Mappings.from_tree({"properties": _nest(path, spec)}).fields[path]
        if ftype in ("knn_vector", "rank_features", "rank_feature"):
            _check_special(leaf, value, self.doc_id)
            return
        items = value if isinstance(value, list) else [value]
        out = self.values.setdefault(path, [])
        for item in items:
            if item is None:
                if "null_value" in spec:
                    out.append(convert(leaf, spec["null_value"], self.doc_id))
                continue
            if isinstance(item, list):
                raise MapperParsingError(_failure(leaf, item, self.doc_id))
            converted = convert(leaf, item, self.doc_id)
            if converted is not _SKIP:
                out.append(converted)
        for sub, sub_spec in spec.get("fields", {}).items():
            sub_leaf = self.base.fields.get(f"{path}.{sub}") or _leaf(sub_spec, f"{path}.{sub}", path)
            sub_out = self.values.setdefault(sub_leaf.path, [])
            for item in items:
                if item is not None and not isinstance(item, list):
                    converted = convert(sub_leaf, item, self.doc_id)
                    if converted is not _SKIP:
                        sub_out.append(converted)

    def _dynamic(self, path: str, value: Any, dynamic: str) -> dict[str, Any] | None:
        if dynamic in ("false", "runtime"):
            return None
        sample = _first_non_null(value)
        if sample is _SKIP:
            return None
        if dynamic == "strict":
            raise StrictDynamicMappingError(
                f"mapping set to strict, dynamic introduction of [{path.rsplit('.', 1)[-1]}] within "
                f"[{path.rsplit('.', 1)[0] if '.' in path else '_doc'}] is not allowed"
            )
        spec = self._from_template(path, sample) or _guess(sample)
        if self.tree is None:
            self.tree = copy.deepcopy(dict(self.base.tree))
            self.tree.setdefault("properties", {})
        parent = self._props_for(path.rsplit(".", 1)[0] + "." if "." in path else "")
        parent[path.rsplit(".", 1)[-1]] = spec
        return spec

    def _from_template(self, path: str, sample: Any) -> dict[str, Any] | None:
        templates = self.base.tree.get("dynamic_templates")
        if not templates:
            return None
        is_date = isinstance(sample, str) and self.base.tree.get("date_detection", True) not in (False, "false")
        mapping_type = dynamic_templates.detected_type(sample, is_date and dates.looks_like_date(sample))
        return dynamic_templates.mapping_for(templates, path, mapping_type)

    def _props_for(self, prefix: str) -> dict[str, Any]:
        """The properties dict for an object path prefix, in the grown tree if there is one."""
        tree = self.tree if self.tree is not None else self.base.tree
        props = tree.get("properties", {})
        if prefix:
            for part in prefix.rstrip(".").split("."):
                props = (
                    props[part].setdefault("properties", {})
                    if self.tree is not None
                    else props[part].get("properties", {})
                )
        return props


class StrictDynamicMappingError(MapperParsingError):
    error_type = "strict_dynamic_mapping_exception"


_SKIP = object()


def _first_non_null(value: Any) -> Any:
    if isinstance(value, list):
        for item in value:
            found = _first_non_null(item)
            if found is not _SKIP:
                return found
        return _SKIP
    return _SKIP if value is None else value


def _guess(sample: Any) -> dict[str, Any]:
    if isinstance(sample, bool):
        return {"type": "boolean"}
    if isinstance(sample, int):
        return {"type": "long"}
    if isinstance(sample, float):
        return {"type": "float"}
    if isinstance(sample, dict):
        return {"properties": {}}
    text = str(sample)
    if dates.looks_like_date(text):
        return {"type": "date"}
    return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def _nest(path: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    parts = path.split(".")
    tree: dict[str, Any] = {parts[-1]: spec}
    for part in reversed(parts[:-1]):
        tree = {part: {"properties": tree}}
    return tree


def _failure(leaf: Field, value: Any, doc_id: str) -> str:
    preview = value
    return (
        f"failed to parse field [{leaf.path}] of type [{leaf.type}] in document with id '{doc_id}'. "
        f"Preview of field's value: '{preview}'"
    )


def convert(leaf: Field, value: Any, doc_id: str) -> Any:
    """One value as the index stores it, or a mapper_parsing_exception naming the field."""
    base = leaf.base_type
    try:
        if base == "text":
            if isinstance(value, dict):
                raise ValueError("object")
            return value if isinstance(value, str) else _as_text(value)
        if base == "keyword":
            if isinstance(value, dict):
                raise ValueError("object")
            text = value if isinstance(value, str) else _as_text(value)
            if leaf.ignore_above is not None and len(text) > leaf.ignore_above:
                return _SKIP
            return text
        if base == "integer":
            return _as_int(value, leaf.type)
        if base == "float":
            number = _as_float(value)
            if leaf.type == "scaled_float" and leaf.scaling_factor:
                number = round(number * leaf.scaling_factor) / leaf.scaling_factor
            return number
        if base == "boolean":
            return _as_bool(value)
        if base == "date":
            return dates.parse(value, leaf.date_format)
        if base == "ip":
            import ipaddress

            return str(ipaddress.ip_address(str(value)))
        return value
    except (ValueError, TypeError, OverflowError) as exc:
        raise MapperParsingError(
            _failure(leaf, value, doc_id),
            caused_by={"type": "illegal_argument_exception", "reason": str(exc) or "invalid value"},
        ) from exc


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    raise ValueError(f"Can't get text on a {type(value).__name__}")


def _as_int(value: Any, ftype: str) -> int:
    if isinstance(value, bool | dict | list):
        raise ValueError(f"Current token is not a number: {value!r}")
    if isinstance(value, str):
        value = float(value) if any(c in value for c in ".eE") else int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"[{ftype}] supports only finite values, but got [{value}]")
        value = int(value)  # OpenSearch coerces by truncating the fraction
    limit = INTEGER_TYPES[ftype]
    low = 0 if ftype == "unsigned_long" else -limit
    if not low <= value < limit:
        raise ValueError(f"Value [{value}] is out of range for {'an' if ftype == 'integer' else 'a'} {ftype}")
    return int(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool | dict | list):
        raise ValueError(f"Current token is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"[float] supports only finite values, but got [{value}]")
    return number


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", ""):
        return value == "true"
    if value == "false":
        return False
    raise ValueError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def _check_special(leaf: Field, value: Any, doc_id: str) -> None:
    if leaf.type == "knn_vector":
        _check_vector(leaf, value)
    elif leaf.type == "rank_features":
        if not isinstance(value, dict):
            raise MapperParsingError(
                f"[rank_features] fields must be json objects, expected a START_OBJECT but got: {value}"
            )
        for feature, weight in value.items():
            _check_feature(f"{leaf.path}.{feature}", weight)
    else:
        _check_feature(leaf.path, value)


def _check_feature(name: str, weight: Any) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise MapperParsingError(f"[rank_features] fields take numbers, but got [{weight}] for [{name}]")
    if weight <= 0:
        raise MapperParsingError(f"[rank_features] fields do not support negative or zero values: [{name}] = {weight}")


def _check_vector(leaf: Field, value: Any) -> None:
    if value is None:
        return  # no vector for this document, as OpenSearch allows
    if not isinstance(value, list):
        raise MapperParsingError(
            f"failed to parse field [{leaf.path}] of type [knn_vector]",
            caused_by={"type": "illegal_argument_exception", "reason": "Vector must be an array of numbers"},
        )
    dim = leaf.params.get("dimension")
    data_type = leaf.params.get("data_type", "float")
    expected = dim // 8 if data_type == "binary" and isinstance(dim, int) else dim
    if expected is not None and len(value) != expected:
        raise MapperParsingError(f"Vector dimension mismatch. Expected: {expected}, Given: {len(value)}")
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise MapperParsingError(f"KNN vector values cannot be NaN or Infinity, or non numbers: [{number}]")
        if data_type in ("byte", "binary"):
            if not float(number).is_integer():
                raise MapperParsingError(
                    f"[data_type] field was set as [{data_type}] in index mapping. But, KNN vector values are "
                    f"floats instead of byte integers"
                )
            if not -128 <= number <= 127:
                raise MapperParsingError(
                    f"[data_type] field was set as [{data_type}] in index mapping. But, KNN vector values are not "
                    f"within in the byte range [-128, 127]"
                )
    method = leaf.params.get("method") or {}
    space = leaf.params.get("space_type") or method.get("space_type")
    if space == "cosinesimil" and not any(value):
        raise MapperParsingError("zero vector is not supported when space type is [cosinesimil]")


def iter_leaves(fields: Mapping[str, Field]) -> Iterator[Field]:
    yield from fields.values()
