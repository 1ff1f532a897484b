"""SHiFT-QL: grammar, query tree, parser, renderer and the canonical JSON form.

Typical use::

    from shift.ql import parse, render, to_json, from_json
    tree = parse('SELECT * FROM models WHERE num_params < 10M')
    assert parse(render(tree)) == tree
"""

from shift.ql.codec import dumps, from_json, loads, to_json
from shift.ql.parser import parse, parse_script
from shift.ql.render import render

__all__ = ["dumps", "from_json", "loads", "parse", "parse_script", "render", "to_json"]
