"""What JSON Schema cannot say about the sheetlog API, told to schemathesis.

openapi.yaml marks these with a `format` of its own (see the document's
conventions and docs/api.md):

- `a1-range`: an A1 range within the grid holding at most 10,000 cells
  (the pattern bounds each corner; the bound on the cells is a relation
  between the corners);
- `continuation`: a token this server issued for the same directory, or
  empty for the first page. A fresh server has issued none, so positive
  cases use the empty token.

And one convention: integers in request bodies are written without
fraction or exponent (`462`, not `462.0`), while JSON Schema counts
`462.0` as an integer; generated bodies are written the API's way.
"""

import re

from hypothesis import strategies as st

import schemathesis

MAX_COORD = 2**31 - 1  # the last row and column index
MAX_CELLS = 10_000


def column_letters(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def ref(row: int, col: int) -> str:
    return f"{column_letters(col)}{row + 1}"


@st.composite
def a1_ranges(draw):
    rows = draw(st.integers(1, MAX_CELLS))
    cols = draw(st.integers(1, MAX_CELLS // rows))
    # Near the origin mostly, sometimes anywhere up to the grid's edge.
    row0 = draw(st.one_of(st.integers(0, 300), st.integers(0, MAX_COORD - rows + 1)))
    col0 = draw(st.one_of(st.integers(0, 300), st.integers(0, MAX_COORD - cols + 1)))
    a, b = ref(row0, col0), ref(row0 + rows - 1, col0 + cols - 1)
    if a == b and draw(st.booleans()):
        return a
    return draw(st.sampled_from([f"{a}:{b}", f"{b}:{a}"]))


schemathesis.openapi.format("a1-range", a1_ranges())
schemathesis.openapi.format("continuation", st.just(""))

# Past 2**53 a float no longer spells its integer exactly.
_EXACT = 2**53


def _plain_integers(value):
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_integers(v) for v in value]
    return value


# The shape of a token (openapi.yaml's Continuation parameter).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{0,4096}")


@schemathesis.hook
def map_case(context, case):
    # Every phase goes through here (the coverage phase does not use
    # format strategies): a schema-valid token is valid only if issued.
    query = case.query
    if query and isinstance(query.get("continuation"), str) and _TOKEN.fullmatch(query["continuation"]):
        query["continuation"] = ""
    if isinstance(case.body, (dict, list)):
        case.body = _plain_integers(case.body)
    return case
