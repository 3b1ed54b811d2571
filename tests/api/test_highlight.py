"""Search-hit highlighting (`highlight` in the search body), compared with OpenSearch's documented responses
("Highlight query matches"): fragments, tags, options, query types, and the knn / hybrid paths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, assert_error

INDEX = "highlight-docs"
MAPPINGS = {
    "properties": {
        "text_entry": {"type": "text", "fields": {"english": {"type": "text", "analyzer": "english"}}},
        "play_name": {"type": "keyword"},
        "speaker": {"type": "text"},
        "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        "vec": {"type": "knn_vector", "dimension": 2, "space_type": "l2"},
    }
}
LONG = (
    "The first sentence talks about cats. The second sentence is about dogs and nothing else at all. "
    "A third sentence mentions cats and more cats, many cats indeed. The last one is short."
)
DOCS: dict[str, dict[str, Any]] = {
    "33765": {"text_entry": "my life, except my life.", "play_name": "Hamlet", "speaker": "HAMLET", "vec": [0, 0]},
    "51877": {"text_entry": "The treasury of life, when life itself", "play_name": "King Lear", "vec": [1, 0]},
    "39245": {"text_entry": "mark Alexanders life well, Harry of Monmouths life", "play_name": "Henry V"},
    "0": {"text_entry": "ACT I", "play_name": "Henry IV", "speaker": "", "vec": [0, 1]},
    "html": {"text_entry": "<h3>Hamlet</h3>", "play_name": "x"},
    "brag": {"text_entry": "A thousand raw tricks of these bragging Jacks,", "play_name": "Merchant of Venice"},
    "fox": {"text_entry": "the quick brown fox saw a quick red fox and a brown dog", "title": "Foxes and dogs"},
    "long": {"text_entry": LONG, "title": "I am pretty long so some of me should get cut off. Second sentence"},
    "multi": {"text_entry": ["no match in this one", "a storm is coming", "storm after storm"]},
}


@pytest.fixture(scope="module")
def docs(client: OpenSearch) -> Iterator[str]:
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    client.indices.create(index=INDEX, body={"settings": {"index.knn": True}, "mappings": MAPPINGS})
    for doc_id, doc in DOCS.items():
        client.index(index=INDEX, id=doc_id, body=doc)
    client.indices.refresh(index=INDEX)
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)


def _highlights(client: OpenSearch, query: dict[str, Any], highlight: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`highlight` of each hit, by `_id` (hits without one map to None)."""
    body = {"query": query, "highlight": highlight, "size": 20, **extra}
    hits = client.search(index=INDEX, body=body)["hits"]["hits"]
    return {h["_id"]: h.get("highlight") for h in hits}


pytestmark = pytest.mark.usefixtures("docs")


# ---- the documented examples -----------------------------------------------------------------------------------


def test_match_query_marks_every_occurrence(client: OpenSearch) -> None:
    body = {"query": {"match": {"text_entry": "life"}}, "size": 3, "highlight": {"fields": {"text_entry": {}}}}
    hits = client.search(index=INDEX, body=body)["hits"]["hits"]
    assert {h["_id"]: h["highlight"] for h in hits} == {
        "33765": {"text_entry": ["my <em>life</em>, except my <em>life</em>."]},
        "51877": {"text_entry": ["The treasury of <em>life</em>, when <em>life</em> itself"]},
        "39245": {"text_entry": ["mark Alexanders <em>life</em> well, Harry of Monmouths <em>life</em>"]},
    }
    # The hit keeps its `_source`, and `highlight` follows it, as OpenSearch orders a hit's keys.
    assert list(hits[0]) == ["_index", "_id", "_score", "_source", "highlight"]


def test_custom_tags_on_a_keyword_field_mark_the_whole_value(client: OpenSearch) -> None:
    found = _highlights(
        client,
        {"match": {"play_name": "Henry IV"}},
        {"pre_tags": ["<strong>"], "post_tags": ["</strong>"], "fields": {"play_name": {}}},
    )
    assert found == {"0": {"play_name": ["<strong>Henry IV</strong>"]}}


def test_html_encoder_escapes_the_text_around_the_tags(client: OpenSearch) -> None:
    found = _highlights(client, {"match": {"text_entry": "hamlet"}}, {"encoder": "html", "fields": {"text_entry": {}}})
    assert found == {"html": {"text_entry": ["&lt;h3&gt;<em>Hamlet</em>&lt;&#x2F;h3&gt;"]}}


def test_stemmed_field_marks_the_original_words(client: OpenSearch) -> None:
    found = _highlights(client, {"match": {"text_entry.english": "brag"}}, {"fields": {"text_entry.english": {}}})
    assert found == {"brag": {"text_entry.english": ["A thousand raw tricks of these <em>bragging</em> Jacks,"]}}


# ---- query types -----------------------------------------------------------------------------------------------


def test_phrase_marks_only_the_words_of_the_phrase(client: OpenSearch) -> None:
    found = _highlights(client, {"match_phrase": {"text_entry": "quick brown"}}, {"fields": {"text_entry": {}}})
    assert found == {
        "fox": {"text_entry": ["the <em>quick</em> <em>brown</em> fox saw a quick red fox and a brown dog"]}
    }


def test_bool_marks_matching_clauses_but_not_must_not(client: OpenSearch) -> None:
    query = {
        "bool": {
            "must": [{"match": {"text_entry": "fox"}}],
            "filter": [{"term": {"text_entry": "dog"}}],
            "must_not": [{"match": {"text_entry": "cat"}}],
            "should": [{"match": {"text_entry": "red"}}],
        }
    }
    found = _highlights(client, query, {"fields": {"text_entry": {}}})
    assert found == {
        "fox": {
            "text_entry": [
                "the quick brown <em>fox</em> saw a quick <em>red</em> <em>fox</em> and a brown <em>dog</em>"
            ]
        }
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"prefix": {"text_entry": "bro"}},
            "the quick <em>brown</em> fox saw a quick red fox and a <em>brown</em> dog",
        ),
        (
            {"wildcard": {"text_entry": "q*k"}},
            "the <em>quick</em> brown fox saw a <em>quick</em> red fox and a brown dog",
        ),
        ({"fuzzy": {"text_entry": "dag"}}, "the quick brown fox saw a quick red fox and a brown <em>dog</em>"),
        (
            {"query_string": {"query": "red AND text_entry:dog"}},
            "the quick brown fox saw a quick <em>red</em> fox and a brown <em>dog</em>",
        ),
        (
            {"multi_match": {"query": "saw", "fields": ["text_entry", "title"]}},
            "the quick brown fox <em>saw</em> a quick red fox and a brown dog",
        ),
    ],
)
def test_term_level_and_full_text_queries(client: OpenSearch, query: dict[str, Any], expected: str) -> None:
    found = _highlights(client, query, {"fields": {"text_entry": {}}})
    assert found["fox"] == {"text_entry": [expected]}


# ---- options ---------------------------------------------------------------------------------------------------


def test_fragments_break_at_sentences_within_fragment_size(client: OpenSearch) -> None:
    found = _highlights(client, {"match": {"text_entry": "cats"}}, {"fields": {"text_entry": {"fragment_size": 70}}})
    assert found == {
        "long": {
            "text_entry": [
                "The first sentence talks about <em>cats</em>. ",
                "A third sentence mentions <em>cats</em> and more <em>cats</em>, many <em>cats</em> indeed. ",
            ]
        }
    }


def test_order_by_score_and_number_of_fragments(client: OpenSearch) -> None:
    options = {"fragment_size": 70, "number_of_fragments": 1, "order": "score"}
    found = _highlights(client, {"match": {"text_entry": "cats"}}, {"fields": {"text_entry": options}})
    assert found["long"]["text_entry"] == [
        "A third sentence mentions <em>cats</em> and more <em>cats</em>, many <em>cats</em> indeed. "
    ]


def test_number_of_fragments_zero_returns_the_whole_value(client: OpenSearch) -> None:
    found = _highlights(
        client, {"match": {"text_entry": "dogs"}}, {"number_of_fragments": 0, "fields": {"text_entry": {}}}
    )
    assert found == {"long": {"text_entry": [LONG.replace("dogs", "<em>dogs</em>")]}}


def test_long_sentence_is_cut_at_a_word_boundary_near_the_match(client: OpenSearch) -> None:
    found = _highlights(client, {"match": {"text_entry": "nothing"}}, {"fields": {"text_entry": {"fragment_size": 20}}})
    [fragment] = found["long"]["text_entry"]
    assert "<em>nothing</em>" in fragment
    assert len(fragment.replace("<em>", "").replace("</em>", "")) < 40


def test_multi_valued_field_gives_a_fragment_per_matching_value(client: OpenSearch) -> None:
    found = _highlights(client, {"match": {"text_entry": "storm"}}, {"fields": {"text_entry": {}}})
    assert found == {"multi": {"text_entry": ["a <em>storm</em> is coming", "<em>storm</em> after <em>storm</em>"]}}


def test_no_match_size_returns_the_start_of_the_field(client: OpenSearch) -> None:
    found = _highlights(
        client,
        {"match": {"text_entry": "cats"}},
        {"fields": {"text_entry": {}, "title": {"no_match_size": 18}}},
    )
    assert found["long"]["title"] == ["I am pretty long so"]


def test_require_field_match_false_marks_other_fields(client: OpenSearch) -> None:
    query = {"match": {"title": "and"}}
    assert _highlights(client, query, {"fields": {"text_entry": {}}}) == {"fox": None}
    found = _highlights(client, query, {"require_field_match": False, "fields": {"text_entry": {}, "title": {}}})
    assert found == {
        "fox": {
            "text_entry": ["the quick brown fox saw a quick red fox <em>and</em> a brown dog"],
            "title": ["Foxes <em>and</em> dogs"],
        }
    }


def test_wildcard_fields_highlight_text_and_keyword_fields(client: OpenSearch) -> None:
    found = _highlights(
        client, {"query_string": {"query": "Foxes"}}, {"require_field_match": False, "fields": {"title*": {}}}
    )
    assert found["fox"] == {"title": ["<em>Foxes</em> and dogs"]}


def test_highlight_query_replaces_the_search_query(client: OpenSearch) -> None:
    highlight = {"fields": {"text_entry": {"highlight_query": {"match": {"text_entry": "red"}}}}}
    found = _highlights(client, {"match": {"text_entry": "quick"}}, highlight)
    assert found == {"fox": {"text_entry": ["the quick brown fox saw a quick <em>red</em> fox and a brown dog"]}}


def test_source_false_still_highlights(client: OpenSearch) -> None:
    body = {"query": {"match": {"speaker": "hamlet"}}, "_source": False, "highlight": {"fields": {"speaker": {}}}}
    [hit] = client.search(index=INDEX, body=body)["hits"]["hits"]
    assert "_source" not in hit
    assert hit["highlight"] == {"speaker": ["<em>HAMLET</em>"]}


# ---- vector queries --------------------------------------------------------------------------------------------


def test_knn_highlights_nothing_but_a_highlight_query_does(client: OpenSearch) -> None:
    knn = {"knn": {"vec": {"vector": [0.0, 0.0], "k": 1}}}
    assert _highlights(client, knn, {"fields": {"text_entry": {}}}) == {"33765": None}
    with_query = {"highlight_query": {"match": {"text_entry": "except"}}, "fields": {"text_entry": {}}}
    assert _highlights(client, knn, with_query) == {"33765": {"text_entry": ["my life, <em>except</em> my life."]}}


def test_hybrid_highlights_the_terms_of_its_lexical_queries(client: OpenSearch) -> None:
    body = {
        "query": {
            "hybrid": {
                "queries": [{"match": {"text_entry": "treasury"}}, {"knn": {"vec": {"vector": [0.0, 0.0], "k": 1}}}]
            }
        },
        "highlight": {"fields": {"text_entry": {}}},
        "search_pipeline": {
            "phase_results_processors": [{"normalization-processor": {"normalization": {"technique": "min_max"}}}]
        },
    }
    hits = client.search(index=INDEX, body=body)["hits"]["hits"]
    assert {h["_id"]: h.get("highlight") for h in hits} == {
        "51877": {"text_entry": ["The <em>treasury</em> of life, when life itself"]},
        "33765": None,
    }


# ---- errors ----------------------------------------------------------------------------------------------------


def test_unknown_highlighter_type_is_refused(http: RawHttp) -> None:
    body = {"query": {"match_all": {}}, "highlight": {"fields": {"text_entry": {"type": "magic"}}}}
    status, found = http.request("POST", f"/{INDEX}/_search", body)
    assert status == 400
    assert_error(
        found, 400, "illegal_argument_exception", "unknown highlighter type [magic] for the field [text_entry]"
    )


def test_unknown_highlight_option_is_refused(http: RawHttp) -> None:
    body = {"query": {"match_all": {}}, "highlight": {"fields": {"text_entry": {}}, "colour": "red"}}
    status, found = http.request("POST", f"/{INDEX}/_search", body)
    assert status == 400
    assert_error(found, 400, "parsing_exception", "[highlight] unknown field [colour]")


def test_text_longer_than_max_analyzed_offset_is_refused(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.indices.create(index=index_name, body={"settings": {"index.highlight.max_analyzed_offset": 10}})
    client.index(index=index_name, id="1", body={"text": "far too long a text to highlight"}, refresh=True)
    body = {"query": {"match": {"text": "text"}}, "highlight": {"fields": {"text": {}}}}
    status, found = http.request("POST", f"/{index_name}/_search", body)
    assert_error(found, 400, "illegal_argument_exception", "The length of [text] field of [1] doc of [")
    assert "exceeded [10] - maximum allowed to be analyzed for highlighting" in found["error"]["reason"]
    assert status == 400
