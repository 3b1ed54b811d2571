"""The Painless subset interpreter: connector-style scripts, each construct, Java semantics, limits and errors."""

from __future__ import annotations

import json
import pathlib
import random
import time
from typing import Any

import pytest

from mlsearch.errors import IllegalArgumentError
from mlsearch.painless import Limits, run_script, to_java_string, validate_script

_DATA = json.loads((pathlib.Path(__file__).parent / "data" / "painless_connector_scripts.json").read_text())
_SCRIPTS = {entry["name"]: entry["script"] for entry in _DATA["scripts"]}
_RUNS = [(entry["name"], entry["script"], run) for entry in _DATA["scripts"] for run in entry["runs"]]


def _sequential_escape_spec(text: str) -> str:
    """The built-in escape() as a plain description: these replacements, one after the other, in this order."""
    steps = [("\\", "\\\\"), ('"', '\\"'), ("\r", "\\r"), ("\\t", "\\\\\\t"), ("\n", "\\n"),
             ("\b", "\\b"), ("\f", "\\f")]  # fmt: skip
    for old, new in steps:
        text = text.replace(old, new)
    return text


# --- connector scripts (our own corpus, expected outputs worked out by hand) ----------------------------------------
@pytest.mark.parametrize(("name", "script", "run"), _RUNS, ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(_RUNS)])
def test_connector_script(name: str, script: str, run: dict[str, Any]) -> None:
    if "error" in run:
        with pytest.raises(IllegalArgumentError) as info:
            run_script(script, run["params"])
        assert info.value.reason == run["error"]
        return
    result = run_script(script, run["params"])
    assert result == run["expected"]
    if "expected_json" in run:
        assert json.loads(result) == run["expected_json"]  # what ML Commons parses next
    if run.get("json_invalid"):
        with pytest.raises(ValueError):
            json.loads(result)


def test_corpus_covers_the_connector_script_idioms() -> None:
    assert len(set(_SCRIPTS.values())) >= 12 and len(_SCRIPTS) == len(_DATA["scripts"])
    corpus = "\n".join(_SCRIPTS.values())
    for idiom in (
        "new StringBuilder(",
        "params.text_docs",
        "String escape(def",
        "String quote(def",
        "escape(",
        "params.embeddings.float",
        "params.data",
        "params['results']",
        "new Double[",
        "new BigDecimal(",
        ".floatValue()",
        "throw new IllegalArgumentException(",
        "params.containsKey(",
        " ? ",
        "while (",
    ):
        assert idiom in corpus, idiom  # fmt: skip
    assert sum("error" in run for _, _, run in _RUNS) >= 8
    assert sum("expected_json" in run for _, _, run in _RUNS) >= 15


def test_single_text_pre_process_builds_the_parameters_object() -> None:
    text = 'Why is the sky "blue" at noon?\nAsk a physicist.'
    out = run_script(_SCRIPTS["first_text_parameters"], {"text_docs": [text, "ignored"]})
    assert json.loads(out) == {"parameters": {"inputText": text}}


def test_request_body_round_trips_every_document_through_json() -> None:
    docs = ['quote " and backslash \\', "back\\slash-t \\t stays text", "", "unicode é ✓"]
    out = run_script(_SCRIPTS["request_body_all_docs"], {"text_docs": docs, "input_type": "classification"})
    assert json.loads(out) == {"texts": docs, "input_type": "classification"}


def test_chat_post_process_escapes_with_the_builtin_escape() -> None:
    text = 'He said "hi"\nC:\\dir\r\n\x08\x0c'
    out = run_script(
        _SCRIPTS["chat_reply_to_response"], {"choices": [{"message": {"content": text}, "finish_reason": "x"}]}
    )
    assert json.loads(out) == {"name": "response", "dataAsMap": {"response": text, "finish_reason": "x"}}


def test_builtin_escape_keeps_ml_commons_quirks() -> None:
    # A real tab is left alone (so the JSON built around it is invalid); the two characters backslash-t become
    # four backslashes and a t.
    assert run_script("return escape(params.t)", {"t": "a\tb"}) == "a\tb"
    assert run_script("return escape(params.t)", {"t": "a\\tb"}) == "a\\\\\\\\tb"
    assert run_script("return escape(params.t)", {"t": "\\\\t"}) == "\\" * 6 + "t"
    # A script's own escape() wins, whatever its arity; the built-in also works inside script functions.
    assert run_script("String escape(def x) { return 'own' } return escape('a')", {}) == "own"
    with pytest.raises(IllegalArgumentError, match=r"function escape/1\] at line 1"):
        run_script("String escape(def a, def b) { return a + b } return escape('x')", {})
    assert (
        run_script("String wrap(def s) { return '<' + escape(s) + '>' } return wrap(params.t)", {"t": '"'}) == '<\\">'
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("escape(null)", "Cannot escape a null value at line 1"),
        ("escape(5)", "Cannot escape a value of type [java.lang.Integer], only a String, at line 1"),
        ("escape(['a'])", "Cannot escape a value of type [java.util.ArrayList], only a String, at line 1"),
        ("escape()", "unsupported Painless construct [function escape/0] at line 1"),
        ("escape('a', 'b')", "unsupported Painless construct [function escape/2] at line 1"),
    ],
)
def test_builtin_escape_refuses_what_it_cannot_escape(call: str, message: str) -> None:
    with pytest.raises(IllegalArgumentError) as info:
        run_script(f"return {call}", {})
    assert info.value.reason == message


def test_builtin_escape_matches_the_sequential_description() -> None:
    rng = random.Random(20240611)
    pieces = ["\\", "t", "\\t", '"', "\r", "\n", "\b", "\f", "\t", "a", "r", "n", "é", "\x01", " "]
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert run_script("return escape(params.s)", {"s": text}) == _sequential_escape_spec(text), repr(text)


def test_rerank_post_process_reorders_scores_by_index() -> None:
    rng = random.Random(7)
    scores = [round(rng.random(), 4) for _ in range(6)]
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
    results = [{"index": i, "relevance_score": scores[i]} for i in ranked]
    tensors = json.loads(run_script(_SCRIPTS["rerank_scores_in_input_order"], {"results": results}))
    assert [t["data"] for t in tensors] == [[score] for score in scores]
    assert {t["name"] for t in tensors} == {"similarity"} and all(t["shape"] == [1] for t in tensors)


def test_params_are_not_modified() -> None:
    params = {"text_docs": ["a"], "m": {"k": 1}}
    run_script("params.text_docs.add('b'); params.m.put('k', 2); params.x = 1; return null", params)
    assert params == {"text_docs": ["a"], "m": {"k": 1}}


# --- constructs ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("return 'single' + \"double\"", "singledouble"),
        ("return 'it\\'s' + \" a \\\"q\\\" \\\\\"", 'it\'s a "q" \\'),
        ("int i = 7; double d = 2; String s = 'x'; List l = [1, 2]; Map m = ['a': 1]; def z; return [i, d, s, l, m, z]",
         [7, 2.0, "x", [1, 2], {"a": 1}, None]),
        ("def x = 1; x += 2; x -= 1; x *= 5; x /= 3; x %= 2; return x", 1),
        ("String s = 'a'; s += 1; s += null; return s", "a1null"),
        ("def l = []; l.add(1); l.add(0, 0); return l + ''", "[0, 1]"),
        ("def m = [:]; m.put('k', 'v'); m['n'] = 2; m.o = 3; return m", {"k": "v", "n": 2, "o": 3}),
        ("return ['a': 1, 'b': [1, 2]].b[1]", 2),
        ("if (params.x > 1) { return 'big' } else if (params.x == 1) { return 'one' } else return 'small'", "one"),
        ("int s = 0; for (int i = 0; i < 5; i++) { if (i == 3) continue; s += i; } return s", 7),
        ("int s = 0; for (def v : params.list) { s += v; } return s", 6),
        ("int s = 0; for (v in params.list) { s += v } return s", 6),
        ("int i = 0; while (true) { i++; if (i >= 4) break; } return i", 4),
        ("int i = 0; do { i += 2 } while (i < 5); return i", 6),
        ("int i = 5; int j = i++ + ++i; return [i, j]", [7, 12]),
        ("return params.list.length + params.list.size() + 'abc'.length()", 9),
        ("return params.containsKey('list') && !params.containsKey('nope') && params.nope == null", True),
        ("return [params.list.isEmpty(), [].isEmpty(), ''.isEmpty(), [:].isEmpty()]", [False, True, True, True]),
        ("return 'hello world'.substring(6) + 'hello'.substring(1, 3)", "worldel"),
        ("return 'a-b-c'.replace('-', '+').toUpperCase().toLowerCase()", "a+b+c"),
        ("return ['abc'.indexOf('c'), 'abc'.indexOf('z'), 'abc'.startsWith('ab'), 'abc'.endsWith('bc')]", [2, -1, True, True]),
        ("return '  pad \t\n'.trim()", "pad"),
        ("return String.join('|', 'a,b,,c,,'.split(','))", "a|b||c"),
        ("return String.join(', ', ['x', 'y'])", "x, y"),
        ("StringBuilder sb = new StringBuilder(); sb.append('ab').append(1).append(null); int n = sb.length(); sb.setLength(2); return sb.toString() + n", "ab7"),
        ("def sb = new StringBuilder('x'); return '[' + sb + ']'", "[x]"),
        ("return params.flag ? 'y' : 'n'", "n"),
        ("return params.nope ?: 'fallback'", "fallback"),
        ("def v = params.list; return [v instanceof List, v instanceof Map, 'x' instanceof String, null instanceof def]", [True, False, True, False]),
        ("return [(String) params.s, (List) params.list, (Map) params, (int) 3.9, (int) -3.9, (double) 2]", ["str", [1, 2, 3], None, 3, -3, 2.0]),
        ("return 'abc'.equals(params.s) || 'str'.equals(params.s)", True),
        ("return [Math.max(1, 2), Math.min(1.5, 2), Math.abs(-3), Math.floor(2.7), Math.round(2.5), Math.sqrt(16), Math.pow(2, 10)]",
         [2, 1.5, 3, 2.0, 3, 4.0, 1024.0]),
        ("return [Integer.parseInt('42'), Double.parseDouble('2.5'), String.valueOf(3), Integer.MAX_VALUE]", [42, 2.5, "3", 2147483647]),
        ("def a = new Double[2]; a[1] = 0.5; return a.length + ':' + a[0] + ':' + a[1]", "2:null:0.5"),
        ("int[] a = new int[3]; a[2] = 4; return a[-1] + a[0]", 4),
        ("return new BigDecimal('3.0').intValue()", 3),
        ("String twice(def s) { return s + s; } return twice('ab')", "abab"),
        ("int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); } return fact(10)", 3628800),
        ("return params['s'].toString() + params.list[0].toString()", "str1"),
        ("return params?.nope?.deeper", None),
        ("/* block */ // line\nreturn 1 // trailing", 1),
        ("return 0x1F + 2L + 1.5f", 34.5),
    ],
)  # fmt: skip
def test_construct(script: str, expected: Any) -> None:
    params = {"list": [1, 2, 3], "s": "str", "flag": False, "x": 1}
    if "(Map) params" in script:
        expected = [*expected[:2], params, *expected[3:]]
    assert run_script(script, params) == expected


# --- Java semantics --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("return 7 / 2", 3),
        ("return -7 / 2", -3),
        ("return -7 % 3", -1),
        ("return 7.0 / 2", 3.5),
        ("return 1 / 0.0", float("inf")),
        ("return '' + 1 + 2", "12"),
        ("return 1 + 2 + ''", "3"),
        ("return '' + 1.0 + ',' + 0.00001 + ',' + 1e7 + ',' + 123.25 + ',' + 0.001", "1.0,1.0E-5,1.0E7,123.25,0.001"),
        ("return '' + 0.1f + ',' + (float) 1.1 + ',' + 3.0f", "0.1,1.1,3.0"),
        ("return '' + null + true", "nulltrue"),
        ("return '' + [1, 'a', null, [2.0]] + ['k': 'v']", "[1, a, null, [2.0]]{k=v}"),
        ("return 1 == 1.0", True),
        ("def a = 'x'; def b = 'x'; return a == b", True),
        ("return Integer.valueOf(1).equals(1.0)", False),
        ("return params.big * 2", 2**32),
        ("long x = 9223372036854775807L; return x + 1", -(2**63)),
        ("int i = 0; i += 1.7; return i", 1),
        ("return (int) 1e20", 2147483647),
        ("double d = 1; return '' + d", "1.0"),
        ("return params.x.intValue() + params.y.floatValue()", 3.5),
    ],
)
def test_java_semantics(script: str, expected: Any) -> None:
    assert run_script(script, {"big": 2**31, "x": 1.9, "y": 2.5}) == expected


def test_to_java_string_matches_java() -> None:
    assert to_java_string([1.0, 2.5e-7, None, True, {"a": [1]}]) == "[1.0, 2.5E-7, null, true, {a=[1]}]"
    assert to_java_string(-0.0) == "-0.0" and to_java_string(float("nan")) == "NaN"


# --- errors ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("def f = x -> x;\nreturn f", "unsupported Painless construct [lambda] at line 1"),
        ("return 1;\nreturn params.list.stream().map(String::valueOf)", "unsupported Painless construct [method reference] at line 2"),
        ("try { return 1 } catch (Exception e) { return 2 }", "unsupported Painless construct [try] at line 1"),
        ("\n\nswitch (params.x) { }", "unsupported Painless construct [switch] at line 3"),
        ("return params.s =~ /x/", "unsupported Painless construct [regex] at line 1"),
        ("return 'a\\nb'", "unsupported Painless construct [escape sequence \\n] at line 1"),
        ("return new Date()", "unsupported Painless construct [new Date] at line 1"),
        ("return params.s.foo()", "unsupported Painless construct [method String.foo/0] at line 1"),
        ("return 'abc'.length", "unsupported Painless construct [field String.length] at line 1"),
        ("return Math.cbrt(8)", "unsupported Painless construct [method Math.cbrt/1] at line 1"),
        ("return nope(1)", "unsupported Painless construct [function nope/1] at line 1"),
        ("Foo x = 1", "invalid Painless script"),
        ("return (1 + 2", "expected [)] but found end of script at line 1"),
        ("return 'open", "unterminated string literal at line 1"),
        ("return undefinedVar", "cannot resolve symbol [undefinedVar] at line 1"),
        ("def x = 1; def x = 2", "variable [x] is already defined at line 1"),
        ("return params.list[3]", "Index 3 out of bounds for length 3 at line 1"),
        ("return params.list.get(-9)", "Index -9 out of bounds for length 3 at line 1"),
        ("return params.nope.length", "Cannot access field [length] of a null value at line 1"),
        ("return params.nope.size()", "Cannot invoke method [size] on a null value at line 1"),
        ("return 1 / 0", "/ by zero at line 1"),
        ("int i = 1.5", "Cannot cast from [java.lang.Double] to [int] at line 1"),
        ("String s = 1", "Cannot cast from [java.lang.Integer] to [String] at line 1"),
        ("if (params.s) { return 1 }", "Cannot cast from [java.lang.String] to [boolean] at line 1"),
        ("return [1] - 1", "Cannot apply [-] operation to types [java.util.ArrayList] and [java.lang.Integer] at line 1"),
        ("throw new IllegalArgumentException('bad input: ' + params.s)", "bad input: str"),
        ("throw new RuntimeException()", "RuntimeException"),
    ],
)  # fmt: skip
def test_error(script: str, message: str) -> None:
    with pytest.raises(IllegalArgumentError) as info:
        run_script(script, {"list": [1, 2, 3], "s": "str", "x": 1})
    assert message in info.value.reason
    assert info.value.status == 400


def test_validate_script_rejects_unsupported_constructs_without_running() -> None:
    validate_script("while (true) {}")  # parses; it is the run that would be stopped
    with pytest.raises(IllegalArgumentError, match=r"\[lambda\] at line 2"):
        validate_script("def a = 1;\nparams.list.forEach(x -> a += x)")


# --- limits ----------------------------------------------------------------------------------------------------------
def test_endless_loop_hits_the_step_limit() -> None:
    with pytest.raises(IllegalArgumentError, match="limit of 10000 steps"):
        run_script("while (true) {}", {}, limits=Limits(max_steps=10_000))


def test_default_step_limit_stops_an_endless_loop_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(IllegalArgumentError, match="steps"):
        run_script("int i = 0; while (true) { i++ }", {}, limits=Limits(timeout_seconds=60))
    assert time.monotonic() - start < 30


def test_time_limit() -> None:
    with pytest.raises(IllegalArgumentError, match="time limit"):
        run_script("int i = 0; while (true) { i++ }", {}, limits=Limits(max_steps=10**9, timeout_seconds=0.05))


def test_string_and_collection_growth_is_capped() -> None:
    with pytest.raises(IllegalArgumentError, match="string longer than"):
        run_script("def s = 'ab'; while (true) { s = s + s }", {})
    with pytest.raises(IllegalArgumentError, match="string longer than"):
        run_script("def b = new StringBuilder('ab'); while (true) { b.append(b.toString()) }", {})
    with pytest.raises(IllegalArgumentError, match="collection larger than"):
        run_script("def l = [1]; while (true) { l.addAll(l) }", {})
    with pytest.raises(IllegalArgumentError, match="exceeds the script limit"):
        run_script("return new int[100000000]", {})


def test_recursion_and_nesting_are_bounded() -> None:
    with pytest.raises(IllegalArgumentError, match="recurse too deeply"):
        run_script("int f(int n) { return f(n + 1); } return f(0)", {})
    with pytest.raises(IllegalArgumentError, match="nesting is too deep"):
        run_script("return " + "(" * 500 + "1" + ")" * 500, {})
    with pytest.raises(IllegalArgumentError, match="too deeply"):
        run_script("def l = []; l.add(l); return '' + l", {})


def test_no_python_eval_or_exec_in_the_interpreter() -> None:
    import mlsearch.painless as package

    paths = sorted(pathlib.Path(package.__file__).parent.glob("*.py"))
    assert len(paths) >= 9  # the facade, lexer, parser, nodes, interpreter, java, methods, builtins, __init__
    for path in paths:
        text = path.read_text()
        assert "eval(" not in text.replace("_eval(", "").replace(".evaluate(", "") and "exec(" not in text, path


# --- update-script support: extra bindings changed in place, Map.Entry, List.remove(Object) -------------------------


def test_bindings_are_shared_and_params_copied() -> None:
    params = {"tags": ["a"]}
    ctx = {"_source": {"n": 1}, "op": "index"}
    script = "ctx._source.n += params.by; ctx._source.m = params.tags; params.tags.add('b'); ctx.op = 'noop'"
    run_script(script, {**params, "by": 2}, bindings={"ctx": ctx})
    assert ctx == {"_source": {"n": 3, "m": ["a", "b"]}, "op": "noop"}
    assert params == {"tags": ["a"]}


def test_entry_set_get_set_value_and_shortcuts() -> None:
    ctx: dict[str, Any] = {"_source": {"a": 1, "b": 2}}
    script = (
        "for (entry in params.entrySet()) { ctx._source[entry.getKey()] = entry.getValue(); }"
        "for (def e : ctx._source.entrySet()) { if (e.key == 'a') { e.setValue(e.value * 10) } }"
        "return ctx._source.entrySet().get(0).toString()"
    )
    assert run_script(script, {"c": 3, "b": 20}, bindings={"ctx": ctx}) == "a=10"
    assert ctx["_source"] == {"a": 10, "b": 20, "c": 3}


def test_list_remove_by_index_or_value_and_map_helpers() -> None:
    script = (
        "def l = ['x', 'y', 'z']; def removed = l.remove(0); boolean gone = l.remove('z'); boolean none = l.remove('q');"
        "def m = ['k': 1]; def old = m.remove('k');"
        "return removed + ' ' + gone + ' ' + none + ' ' + l + ' ' + old + ' ' + m.containsKey('k')"
    )
    assert run_script(script, {}) == "x true false [y] 1 false"


def test_to_json_turns_script_values_into_plain_json() -> None:
    from decimal import Decimal

    from mlsearch.painless.java import JavaArray, JavaFloat, StringBuilder, to_json

    value = {1: JavaFloat(0.5), "a": JavaArray([StringBuilder("sb")]), "d": Decimal("1.5")}
    assert to_json(value) == {"1": 0.5, "a": ["sb"], "d": 1.5}
    assert type(to_json(JavaFloat(0.5))) is float
