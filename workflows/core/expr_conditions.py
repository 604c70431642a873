"""Argo Rollouts' conditions are written in expr-lang (github.com/expr-lang/expr); deployflow
evaluates CEL. No maintained Python implementation of expr exists, so an expr condition is
translated to CEL once, when it is compiled.

Python's own parser reads the expression (expr's syntax is close enough once ``&&``, ``||``,
``!`` and the closure argument ``#`` are respelled); the tree is then written out as CEL:

    all(result, # < 1000)        result.all(it0, it0 < 1000)
    all(result, {# < 0.5})       result.all(it0, it0 < 0.5)
    len(result) > 0              size(result) > 0
    result * 100 > 5             result * 100.0 > 5       (expr mixes int and float freely)
    not isNaN(result)            !isNaN(result)
    result matches "^ok"         result.matches("^ok")

A CEL condition passes through unchanged, apart from the int literals of arithmetic, which
become doubles as in expr (``result`` is always a double or JSON, never an int). What
Python cannot parse (CEL's ``c ? a : b``, ``1u``) is left for CEL to read.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

_TOKENS = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
    r"|(?P<raw>`[^`]*`)"
    r"|(?P<and>&&)|(?P<or>\|\|)|(?P<not>!(?!=))"
    r"|(?P<infix>\b(?:matches|contains|startsWith|endsWith)\b)"
    r"|(?P<hash>\#(?P<special>[A-Za-z_]\w*)?)"
    r"|(?P<member>(?:(?<=[(,{\[])|^)\s*\.(?=[A-Za-z_]))",
    re.DOTALL,
)
_CLOSURES = {
    "all": "{0}.all({1}, {2})",
    "any": "{0}.exists({1}, {2})",
    "none": "!{0}.exists({1}, {2})",
    "one": "{0}.exists_one({1}, {2})",
    "filter": "{0}.filter({1}, {2})",
    "map": "{0}.map({1}, {2})",
    "count": "size({0}.filter({1}, {2}))",
}
_RENAMED = {"len": "size", "float": "double"}
_INT_VALUED = {"size", "len", "int", "asInt", "count"}
_COMPARE = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
}
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_BINDER = "_it"  # what ``#`` is respelled to before Python parses the expression


class NotExpr(ValueError):
    """The expression is not expr-lang that deployflow can translate; the message says why."""


def to_cel(expression: str) -> str:
    """The CEL text of an expr (or CEL) condition; unchanged when Python cannot parse it."""
    respelled, infix = _respell(expression)
    lead = len(respelled) - len(respelled.lstrip())  # Python refuses an indented expression
    try:
        tree = ast.parse(respelled.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return expression
    return _Writer({at - lead: name for at, name in infix.items()}).text(tree.body)


def _respell(text: str) -> tuple[str, dict[int, str]]:
    """expr's operators in Python spelling; ``infix`` maps the byte offset of each ``is``
    standing in for ``matches``/``contains``/``startsWith``/``endsWith`` to that name."""
    out: list[str] = []
    infix: dict[int, str] = {}
    position = 0
    for match in _TOKENS.finditer(text):
        out.append(_spaces(text[position : match.start()]))
        kind = match.lastgroup if match.lastgroup != "special" else "hash"
        token = match.group()
        if kind == "string":
            out.append(token)
        elif kind == "raw":
            out.append(json.dumps(token[1:-1]))
        elif kind in ("and", "or", "not"):
            out.append(f" {kind} ")
        elif kind == "infix":
            infix[len("".join(out).encode()) + 1] = token
            out.append(" is ")
        elif kind == "hash":
            if match.group("special"):
                raise NotExpr(f"#{match.group('special')} is not supported")
            out.append(_BINDER)
        elif kind == "member":
            out.append(token[:-1] + _BINDER + ".")
        position = match.end()
    out.append(_spaces(text[position:]))
    return "".join(out), infix


def _spaces(text: str) -> str:
    """Line breaks outside strings become spaces: Python then reads the text as one line."""
    return re.sub(r"\s", " ", text)


@dataclass
class _Writer:
    infix: dict[int, str]
    depth: int = 0

    def text(self, node: ast.expr) -> str:
        return self._write(node)[0]

    def _write(self, node: ast.expr) -> tuple[str, str]:
        """CEL text and its kind: ``int``, ``const-int`` or ``other``."""
        if isinstance(node, ast.BoolOp):
            joiner = " && " if isinstance(node.op, ast.And) else " || "
            return joiner.join(self._operand(v, node) for v in node.values), "other"
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._arithmetic(node)
        if isinstance(node, ast.Compare):
            return self._compare(node), "other"
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Attribute):
            return f"{self._receiver(node.value)}.{node.attr}", "other"
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise NotExpr("slices (result[1:3]) are not supported")
            return f"{self._receiver(node.value)}[{self.text(node.slice)}]", "other"
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        if isinstance(node, ast.List):
            return "[" + ", ".join(self.text(e) for e in node.elts) + "]", "other"
        if isinstance(node, ast.Dict):
            pairs = zip(node.keys, node.values, strict=True)
            items = ", ".join(f"{self.text(k)}: {self.text(v)}" for k, v in pairs if k)
            return "{" + items + "}", "other"
        raise NotExpr(f"{type(node).__name__.lower()} expressions are not supported")

    def _operand(self, node: ast.expr, parent: ast.expr) -> str:
        text = self.text(node)
        simple = (ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript, ast.List)
        if isinstance(node, simple) or (_rank(node) > _rank(parent)):
            return text
        return f"({text})"

    def _unary(self, node: ast.UnaryOp) -> tuple[str, str]:
        text, kind = self._write(node.operand)
        if not isinstance(node.operand, ast.Name | ast.Constant | ast.Call):
            text = f"({text})"
        if isinstance(node.op, ast.Not):
            return f"!{text}", "other"
        if isinstance(node.op, ast.USub):
            return f"-{text}", kind
        if isinstance(node.op, ast.UAdd):
            return text, kind
        raise NotExpr("~ is not supported")

    def _arithmetic(self, node: ast.BinOp) -> tuple[str, str]:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            raise NotExpr(f"operator {type(node.op).__name__} is not supported")
        (left, lkind), (right, rkind) = self._write(node.left), self._write(node.right)
        if not isinstance(node.left, ast.Name | ast.Constant | ast.Call | ast.Subscript):
            left = f"({left})" if _rank(node.left) <= _rank(node) else left
        if not isinstance(node.right, ast.Name | ast.Constant | ast.Call | ast.Subscript):
            right = f"({right})" if _rank(node.right) <= _rank(node) else right
        if {lkind, rkind} <= {"int", "const-int"}:
            return f"{left} {op} {right}", "int"  # CEL's integer arithmetic, as written
        # expr's numbers mix freely; CEL's do not: what is an int becomes a double.
        left = _as_double(left, lkind)
        right = _as_double(right, rkind)
        return f"{left} {op} {right}", "other"

    def _compare(self, node: ast.Compare) -> str:
        if len(node.ops) != 1:
            raise NotExpr("chained comparisons (a < b < c) are not supported")
        op, right = node.ops[0], node.comparators[0]
        left_text = self._operand(node.left, node)
        right_text = self._operand(right, node)
        if isinstance(op, ast.Is):
            name = self._infix_between(node.left, right)
            return f"{left_text}.{name}({self.text(right)})"
        if isinstance(op, ast.NotIn):
            return f"!({left_text} in {right_text})"
        symbol = _COMPARE.get(type(op))
        if symbol is None:
            raise NotExpr(f"operator {type(op).__name__} is not supported")
        return f"{left_text} {symbol} {right_text}"

    def _infix_between(self, left: ast.expr, right: ast.expr) -> str:
        end, start = left.end_col_offset or 0, right.col_offset
        for offset, name in self.infix.items():
            if end <= offset < start:
                return name
        raise NotExpr("'is' is not an operator of expr")

    def _call(self, node: ast.Call) -> tuple[str, str]:
        if node.keywords:
            raise NotExpr("keyword arguments are not supported")
        if isinstance(node.func, ast.Attribute):
            target = self._receiver(node.func.value)
            args = ", ".join(self.text(a) for a in node.args)
            kind = "int" if node.func.attr in _INT_VALUED else "other"
            return f"{target}.{node.func.attr}({args})", kind
        if not isinstance(node.func, ast.Name):
            raise NotExpr("only named functions can be called")
        name = node.func.id
        if name in _CLOSURES and len(node.args) == 2:
            return self._closure(name, node.args[0], node.args[1]), (
                "int" if name == "count" else "other"
            )
        cel_name = _RENAMED.get(name, name)
        args = ", ".join(self.text(a) for a in node.args)
        return f"{cel_name}({args})", "int" if name in _INT_VALUED else "other"

    def _closure(self, name: str, collection: ast.expr, predicate: ast.expr) -> str:
        if isinstance(predicate, ast.Set) and len(predicate.elts) == 1:
            predicate = predicate.elts[0]  # expr's older closure syntax: {# < 1}
        binder = f"it{self.depth}"
        # Nested closures have already bound their own #; what is left is this one's.
        body = _Writer(self.infix, self.depth + 1).text(predicate)
        body = re.sub(rf"\b{_BINDER}\b", binder, body)
        return _CLOSURES[name].format(self._receiver(collection), binder, body)

    def _receiver(self, node: ast.expr) -> str:
        """``node`` as the target of a method call (``x.all(...)``)."""
        text = self.text(node)
        simple = (ast.Name, ast.Call, ast.Attribute, ast.Subscript, ast.List)
        return text if isinstance(node, simple) else f"({text})"

    def _name(self, name: str) -> tuple[str, str]:
        if name == "nil":
            return "null", "other"
        if name == _BINDER:
            return _BINDER, "other"
        return name, "other"

    def _constant(self, value: object) -> tuple[str, str]:
        if value is None or isinstance(value, bool):
            raise NotExpr(f"{value} is Python, not expr (write nil, true or false)")
        if isinstance(value, int):
            return str(value), "const-int"
        if isinstance(value, float):
            return repr(value), "other"
        if isinstance(value, str):
            return json.dumps(value), "other"
        raise NotExpr(f"the literal {value!r} is not supported")


def _as_double(text: str, kind: str) -> str:
    if kind == "const-int":
        return f"{text}.0"
    if kind == "int":
        return f"double({text})"
    return text


def _rank(node: ast.expr) -> int:
    """Binding strength, low to high, for deciding where parentheses are needed."""
    if isinstance(node, ast.BoolOp):
        return 1 if isinstance(node.op, ast.Or) else 2
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return 3
    if isinstance(node, ast.Compare):
        return 4
    if isinstance(node, ast.BinOp):
        return 5 if isinstance(node.op, ast.Add | ast.Sub) else 6
    return 7
