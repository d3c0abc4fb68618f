"""What JSON Schema cannot say about the sheetlog API, told to schemathesis.

openapi.yaml marks these with a `format` of its own (see the document's
conventions and docs/api.md):

- `a1-range`: an A1 range within the grid holding at most 10,000 cells
  (the pattern bounds each corner; the bound on the cells is a relation
  between the corners);
- `continuation`: a token this server issued for the same directory, or
  empty for the first page. A fresh server has issued none, so positive
  cases use the empty token.

- the change feed's `wait` on GET log needs a numeric `start` and no
  `end` but `end` (a relation between parameters): schema-valid cases
  that carry `wait` get a numeric `start` and `end=end`, and their wait
  is cut to 0 or 1 s so that a run does not spend minutes waiting on
  empty sheets (pkg/api's tests cover the waits themselves).

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


# The shape of a sequence id and of the other values of start and end
# (openapi.yaml's patterns bound the digits further; any value these
# rewrites produce is within them).
_DIGITS = re.compile(r"[0-9]+")


def _valid_wait(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= 20
    return isinstance(value, str) and _DIGITS.fullmatch(value) is not None and int(value) <= 20


def _feed_relation(query):
    """Make a schema-valid wait meet the relation JSON Schema cannot state,
    changing only values that were schema-valid already."""
    if "wait" not in query or not _valid_wait(query["wait"]):
        return
    query["wait"] = int(query["wait"]) % 2
    if query.get("start", "start") in ("start", "snapshot"):
        query["start"] = "0"
    if isinstance(query.get("end"), str) and _DIGITS.fullmatch(query["end"]):
        query["end"] = "end"


@schemathesis.hook
def map_case(context, case):
    # Every phase goes through here (the coverage phase does not use
    # format strategies): a schema-valid token is valid only if issued.
    query = case.query
    if query and isinstance(query.get("continuation"), str) and _TOKEN.fullmatch(query["continuation"]):
        query["continuation"] = ""
    if query and case.operation.path == "/v1/sheets/{sheet}/log" and case.method.upper() == "GET":
        _feed_relation(query)
    if isinstance(case.body, (dict, list)):
        case.body = _plain_integers(case.body)
    return case
