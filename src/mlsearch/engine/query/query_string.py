"""The basic forms of `query_string` and `simple_query_string`: terms, "phrases", field:value, AND / OR / NOT,
+required and -excluded clauses, and trailing-* prefixes. Grouping with parentheses is not supported yet."""

from __future__ import annotations

import re

import tantivy

from mlsearch.engine.query import compile as qc
from mlsearch.engine.query import dsl

_TOKEN = re.compile(r'\s*([+-]?)(?:([\w.*]+):)?("([^"]*)"|[^\s()"]+)')


def compile_query_string(q: dsl.QueryString, ctx: qc.Context) -> tantivy.Query:
    default_and = q.default_operator == "and"
    required, optional, excluded = [], [], []
    pending_and = False
    negate_next = False
    pos = 0
    text = q.query.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            pos += 1
            continue
        pos = match.end()
        sign, field, raw, phrase = match.group(1), match.group(2), match.group(3), match.group(4)
        if not q.simple and phrase is None and raw in ("AND", "&&"):
            pending_and = True
            if optional:
                required.append(optional.pop())
            continue
        if not q.simple and phrase is None and raw in ("OR", "||"):
            continue
        if phrase is None and raw in ("NOT", "!") and not q.simple:
            negate_next = True
            continue
        clause = _clause(ctx, q, field, raw if phrase is None else None, phrase)
        if clause is None:
            continue
        if sign == "-" or negate_next:
            excluded.append(clause)
        elif sign == "+" or pending_and or default_and:
            required.append(clause)
        else:
            optional.append(clause)
        pending_and = negate_next = False
    clauses = [(qc.Occur.Must, c) for c in required] + [(qc.Occur.MustNot, c) for c in excluded]
    clauses += [(qc.Occur.Should, c) for c in optional]
    if not clauses:
        return qc.nothing()
    if not required and not optional:
        clauses.append((qc.Occur.Must, qc.as_filter(tantivy.Query.all_query())))
    return qc.boosted(tantivy.Query.boolean_query(clauses), q.boost)


def _clause(
    ctx: qc.Context, q: dsl.QueryString, field: str | None, word: str | None, phrase: str | None
) -> tantivy.Query | None:
    fields = ((field, 1.0),) if field else q.fields
    targets = qc.expand_fields(ctx, fields)
    per_field = []
    for col, boost in targets:
        if phrase is not None:
            per_field.append(qc.phrase_field(ctx, col, phrase, analyzer=q.analyzer, boost=boost))
        elif word is not None and word.endswith("*") and col.kind in ("text", "keyword"):
            stem = word.rstrip("*").lower() if col.kind == "text" else word.rstrip("*")
            pattern = re.escape(stem) + ".*"
            per_field.append(qc.constant(tantivy.Query.regex_query(ctx.schema, col.name, pattern), boost))
        elif col.kind in ("text", "keyword") or qc._parses(col, word):
            per_field.append(qc.match_field(ctx, col, word, analyzer=q.analyzer, boost=boost))
    if not per_field:
        return None
    return per_field[0] if len(per_field) == 1 else tantivy.Query.disjunction_max_query(per_field, 0.0)
