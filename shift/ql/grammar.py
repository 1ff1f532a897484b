"""The SHiFT-QL grammar (parsimonious PEG) and the token names used in error messages.

One statement is parsed at a time (:func:`shift.ql.parser.parse_script` moves from one
to the next at top-level semicolons). Keywords are case-insensitive and reserved; every
keyword and punctuation token is a named rule so that a failed parse can say, in words,
which tokens it expected. The terminals (numbers, strings, names, comparison operators,
whitespace and comments) are the patterns of :mod:`shift.ql.tokens`, so the grammar and
the tokenizer cannot disagree on what a token is.

Where alternatives start with different tokens their order does not change the language;
it is the order in which the REPL's completer offers what may come next.
"""

from __future__ import annotations

from functools import cache

from parsimonious.grammar import Grammar

from shift.ql import tokens as t
from shift.ql.tokens import KEYWORDS, RESERVED
from shift.ql.vocabulary import BOOLEAN_COLUMNS

_KEYWORD_RULES = "\n".join(f'{kw} = ~r"{kw}\\b"i _' for kw in KEYWORDS)

_TEXT = (
    r"""
statement_text = _ statement _

statement   = query / explain / declare / print / use / register / register_models / finetune
            / purge / drop

explain     = EXPLAIN JSON? explainable
explainable = query / finetune
declare     = DECLARE name AS query
print       = PRINT (name / STAR)
use         = USE (string / hostport)
register    = REGISTER (DATASET / MODEL) string LPAREN name_list RPAREN
              VALUES LPAREN register_values RPAREN
name_list   = register_column (COMMA register_column)*
register_column = name / string
register_values = register_value (COMMA register_value)*
register_value = value_list / literal
value_list  = LBRACKET (literal (COMMA literal)*)? RBRACKET
register_models = REGISTER MODELS FROM name where? limit?
finetune    = FINETUNE model_ref WITH dataset_ref params? WAIT?
purge       = PURGE (RESULTS / FEATURES / ALL)?
drop        = DROP (DATASET / MODEL) (IF EXISTS)? (string / name)

query       = query_term (UNION ALL? query_term)*
query_term  = (LPAREN query RPAREN) / select / rank
select      = SELECT DISTINCT? columns FROM source where? clause*
rank        = RANK columns FROM source where? clause*

columns     = STAR / (name (COMMA name)*)
source      = name_list_literal / name
where       = WHERE condition
clause      = order_by / trained_on / tested_on / classified_by / ranked_by / limit
            / other_than / chunk / budget / WAIT
order_by    = ORDER BY order_item (COMMA order_item)*
order_item  = order_key (ASC / DESC)?
order_key   = aggregate / name
aggregate   = name LPAREN name RPAREN
trained_on  = TRAINED ON dataset_ref
tested_on   = TESTED ON (TASK / BENCHMARK)? dataset_ref
classified_by = CLASSIFIED BY (classifier_list / classifier_seq)
classifier_seq = classifier (COMMA classifier)*
classifier_list = LBRACKET classifier (COMMA classifier)* RBRACKET
classifier  = (string / name) params?
ranked_by   = BY (ranker_list / ranker_seq)
ranker_list = LBRACKET ranker_item (COMMA ranker_item)* RBRACKET
ranker_seq  = ranker_item (COMMA ranker_item)*
ranker_item = string / name
limit       = LIMIT number
other_than  = OTHER THAN (name_list_literal / name)
chunk       = CHUNK (AUTO / number)
budget      = BUDGET (AUTO / number)

dataset_ref = dataset_list / dataset_seq
dataset_list = LBRACKET dataset_item (COMMA dataset_item)* RBRACKET
dataset_seq = dataset_item (COMMA dataset_item)*
dataset_item = mutation / string / name
mutation    = LPAREN (string / name) change (COMMA change)* RPAREN
change      = CHANGE label_list TO (string / name) label_list?
label_list  = LBRACKET (literal (COMMA literal)*)? RBRACKET
model_ref   = name / string / name_list_literal

params      = LPAREN (param (COMMA param)*)? RPAREN
param       = name EQ literal

name_list_literal = LBRACKET string (COMMA string)* RBRACKET

condition   = and_cond (OR and_cond)*
and_cond    = not_cond (AND not_cond)*
not_cond    = (NOT not_cond) / primary
primary     = (LPAREN condition RPAREN) / predicate
predicate   = between / in_pred / like / is_null / comparison / FINETUNED / flag
flag        = ~r"(?:{FLAGS})\b"i _
between     = operand NOT? BETWEEN literal AND literal
in_pred     = operand NOT? IN (in_values / name_list_literal / name)
in_values   = LPAREN literal (COMMA literal)* RPAREN
like        = operand NOT? LIKE string
is_null     = operand IS NOT? NULL
comparison  = operand CMP_OP operand
operand     = literal / name

literal     = number / string / TRUE / FALSE / NULL
number      = ~r"{NUMBER}" _
string      = (~r"{SINGLE_QUOTED}" / ~r'{DOUBLE_QUOTED}') _
name        = !(KEYWORD) ~r"{NAME}" _
hostport    = ~r"{HOSTPORT}" _
KEYWORD     = ~r"(?:{alternation})\b"i

CMP_OP      = ~r"{CMP_OP}" _
STAR        = "*" _
COMMA       = "," _
LPAREN      = "(" _
RPAREN      = ")" _
LBRACKET    = "[" _
RBRACKET    = "]" _
EQ          = "=" _
# not in TOKEN_WORDS: a failed REGISTER keeps saying "Expected DATASET or MODEL"
MODELS      = ~r"MODELS\b"i _

_           = (~r"{SPACE}" / ~r"{COMMENT}")*
"""
    + _KEYWORD_RULES
)
_TERMINALS = {
    "alternation": "|".join(RESERVED),
    "NUMBER": t.NUMBER,
    "SINGLE_QUOTED": t.SINGLE_QUOTED,
    "DOUBLE_QUOTED": t.DOUBLE_QUOTED,
    "NAME": t.NAME,
    "CMP_OP": t.CMP_OP,
    "HOSTPORT": t.HOSTPORT,
    "SPACE": t.SPACE,
    "COMMENT": t.COMMENT,
    "FLAGS": "|".join(BOOLEAN_COLUMNS),
}


def _fill(text: str) -> str:
    for key, pattern in _TERMINALS.items():
        text = text.replace("{" + key + "}", pattern)
    return text


GRAMMAR_TEXT = _fill(_TEXT)

#: How each token rule is named in an error message ("Expected ... but found ...").
TOKEN_WORDS: dict[str, str] = {
    **{kw: kw for kw in KEYWORDS},
    "number": "a number",
    "string": "a quoted string",
    "name": "a name",
    "hostport": "host:port",
    "CMP_OP": "a comparison (=, !=, <, <=, >, >=)",
    "STAR": "'*'",
    "COMMA": "','",
    "LPAREN": "'('",
    "RPAREN": "')'",
    "LBRACKET": "'['",
    "RBRACKET": "']'",
    "EQ": "'='",
}


@cache
def grammar() -> Grammar:
    """Return the compiled grammar (built once per process)."""
    return Grammar(GRAMMAR_TEXT)
