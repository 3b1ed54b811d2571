"""The catalog of a node's indices: create, open at start-up, delete, resolve names, and the refresher."""

from __future__ import annotations

import base64
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlsearch.engine import names
from mlsearch.engine.index import Index, IndexMeta
from mlsearch.engine.mapping import Mappings, check_knn_mapping
from mlsearch.engine.settings import (
    INTERNAL_INDEX_SETTINGS,
    SettingsRegistry,
    index_settings_registry,
    normalize_index_settings,
)
from mlsearch.engine.store import Store
from mlsearch.engine.vectors.node import KnnNode
from mlsearch.errors import (
    IllegalArgumentError,
    IndexNotFoundError,
    MLSearchError,
    ResourceAlreadyExistsError,
)

log = logging.getLogger(__name__)

# The `version.created` an index reports: OpenSearch 3.1.0's internal version id.
VERSION_CREATED = "137247827"


def new_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Indices:
    """All indices of this node, by name. Creating and deleting take the catalog lock; indices lock themselves."""

    def __init__(self, root: Path, *, refresh_tick: float = 0.1) -> None:
        self.root = root / "indices"
        self.root.mkdir(parents=True, exist_ok=True)
        self.registry: SettingsRegistry = index_settings_registry()
        self._indices: dict[str, Index] = {}
        self._lock = threading.RLock()
        self._refresh_tick = refresh_tick
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self.knn = KnnNode(catalog=self)  # the node's k-NN counters and trained-model lookup, shared by every index

    # ---- life cycle ---------------------------------------------------------------------------------------

    def open_all(self) -> None:
        for path in sorted(self.root.iterdir()):
            if not path.is_dir():
                continue
            try:
                index = self._open(path)
            except Exception:
                log.exception("cannot open index directory %s; leaving it alone", path)
                continue
            if index is None:
                log.warning("removing %s: an index whose creation never completed", path)
                shutil.rmtree(path, ignore_errors=True)
                continue
            self._indices[index.name] = index

    def _open(self, path: Path) -> Index | None:
        db = path / "store.db"
        if not db.exists():
            return None
        store = Store(db)
        if not store.get_meta("ready", False):
            store.close()
            return None
        settings = store.get_meta("settings", {})
        store.set_durable(settings.get("index.translog.durability", "request") == "request")
        meta = IndexMeta(
            name=store.get_meta("name"),
            uuid=store.get_meta("uuid"),
            creation_date=int(store.get_meta("creation_date")),
            settings=settings,
            mappings=Mappings.from_tree(store.get_meta("mappings", {"properties": {}})),
            aliases=store.get_meta("aliases", {}),
            state=store.get_meta("state", "open"),
        )
        return Index(path, meta, store, knn=self.knn)

    def start_refresher(self) -> None:
        self._refresher = threading.Thread(target=self._refresh_loop, name="refresher", daemon=True)
        self._refresher.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._refresh_tick):
            now = time.monotonic()
            for index in list(self._indices.values()):
                try:
                    if index.refresh_due(now):
                        index.refresh()
                except Exception:
                    log.exception("refresh of [%s] failed", index.name)

    def close(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=10)
        with self._lock:
            for index in self._indices.values():
                try:
                    index.close()
                except Exception:
                    log.exception("closing [%s] failed", index.name)
            self._indices.clear()

    # ---- catalog --------------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._indices)

    def all(self) -> list[Index]:
        return [self._indices[n] for n in self.names()]

    def find(self, name: str) -> Index | None:
        return self._indices.get(name)

    def get(self, name: str) -> Index:
        index = self._indices.get(name)
        if index is None:
            raise IndexNotFoundError(name)
        return index

    def aliases(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for index in self._indices.values():
            for alias in index.meta.aliases:
                table.setdefault(alias, []).append(index.name)
        return table

    def resolve(self, expression: str | None, **options: Any) -> list[Index]:
        chosen = names.resolve(expression, self._indices.keys(), self.aliases(), **options)
        return [self._indices[n] for n in chosen]

    def write_target(self, name: str) -> Index | None:
        """The index a write to `name` goes to: the index itself or an alias's (single or write) index."""
        index = self._indices.get(name)
        if index is not None:
            return index
        targets = self.aliases().get(name)
        if not targets:
            return None
        if len(targets) == 1:
            return self._indices[targets[0]]
        writers = [t for t in targets if self._indices[t].meta.aliases[name].get("is_write_index")]
        if len(writers) != 1:
            raise IllegalArgumentError(
                f"no write index is defined for alias [{name}]. The write index may be explicitly disabled using "
                f"is_write_index=false or the alias points to multiple indices without one being designated as a "
                f"write index"
            )
        return self._indices[writers[0]]

    def create(self, name: str, body: Mapping[str, Any] | None = None) -> Index:
        body = body or {}
        names.validate_index_name(name)
        unknown = set(body) - {"settings", "mappings", "aliases"}
        if unknown:
            from mlsearch.errors import ParsingError

            raise ParsingError(f"unknown key [{sorted(unknown)[0]}] for create index")
        settings = self._parse_settings(body.get("settings") or {})
        mappings = Mappings.parse(body.get("mappings"))
        check_knn_mapping(mappings, settings)
        aliases = _parse_aliases(body.get("aliases") or {})
        with self._lock:
            if name in self._indices:
                existing = self._indices[name]
                raise ResourceAlreadyExistsError(
                    f"index [{name}/{existing.meta.uuid}] already exists", index=name, index_uuid=existing.meta.uuid
                )
            if name in self.aliases():
                raise IllegalArgumentError(f"Invalid index name [{name}], already exists as alias")
            index_uuid = new_uuid()
            path = self.root / index_uuid
            path.mkdir(parents=True)
            store = Store(path / "store.db", durable=settings.get("index.translog.durability") != "async")
            meta = IndexMeta(name, index_uuid, int(time.time() * 1000), settings, mappings, aliases)
            try:
                store.put_meta(
                    {
                        "name": name,
                        "uuid": index_uuid,
                        "creation_date": meta.creation_date,
                        "settings": settings,
                        "mappings": mappings.to_json(),
                        "aliases": aliases,
                        "state": "open",
                        "ready": True,
                    }
                )
                index = Index(path, meta, store, knn=self.knn)
            except MLSearchError:
                store.close()
                shutil.rmtree(path, ignore_errors=True)
                raise
            self._indices[name] = index
            return index

    def _parse_settings(self, body: Mapping[str, Any]) -> dict[str, Any]:
        flat = normalize_index_settings(body)
        for internal in INTERNAL_INDEX_SETTINGS:
            if internal in flat:
                raise IllegalArgumentError(f"private index setting [{internal}] can not be set explicitly")
        parsed = self.registry.validate(flat)
        settings = {"index.number_of_shards": 1, "index.number_of_replicas": 1}
        settings.update({k: v for k, v in parsed.items() if v is not None})
        return settings

    def delete(self, index: Index) -> None:
        with self._lock:
            self._indices.pop(index.name, None)
        index.close()
        shutil.rmtree(index.path, ignore_errors=True)

    def update_aliases(self, actions: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Apply (verb, index, alias, options) actions: add, remove or remove_index, all validated first."""
        with self._lock:
            for verb, index_name, alias, _ in actions:
                index = self.get(index_name)
                if verb == "add" and alias in self._indices:
                    raise IllegalArgumentError(
                        f"Invalid alias name [{alias}], an index exists with the same name as the alias"
                    )
                if verb == "remove" and alias not in index.meta.aliases:
                    from mlsearch.errors import ResourceNotFoundError

                    raise ResourceNotFoundError(f"aliases [{alias}] missing")
            for verb, index_name, alias, options in actions:
                index = self._indices.get(index_name)
                if index is None:
                    continue
                aliases = dict(index.meta.aliases)
                if verb == "add":
                    aliases[alias] = options
                elif verb == "remove":
                    aliases.pop(alias, None)
                elif verb == "remove_index":
                    self.delete(index)
                    continue
                index.meta.aliases = aliases
                index.store.put_meta({"aliases": aliases})


def _parse_aliases(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if not isinstance(body, Mapping):
        raise IllegalArgumentError("aliases must be an object")
    out: dict[str, dict[str, Any]] = {}
    for alias, options in body.items():
        names.validate_index_name(alias)
        out[alias] = dict(options or {})
    return out
