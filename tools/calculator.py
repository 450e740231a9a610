"""A calculator the model can't turn into code execution: Python's `ast` walked over a whitelist, never `eval`.

Accepts what people type: `17.5% of 2,340`, `2^10`, `3 × 4 ÷ 2`, `sqrt(2)`, `10 % 3`, `1e3`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

MAX_EXPONENT = 10_000
MAX_MAGNITUDE = 1e300
MAX_INT_DIGITS = 4_000
MAX_LENGTH = 500
MAX_DEPTH = 60


class CalculatorError(ValueError):
    pass


BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "cbrt": lambda x: math.copysign(abs(x) ** (1 / 3), x),
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "exp": math.exp,
    "ln": math.log,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "degrees": math.degrees,
    "radians": math.radians,
    "min": min,
    "max": max,
    "factorial": math.factorial,
    "hypot": math.hypot,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def normalise(expression: str) -> str:
    """People's notation to Python's: thousands separators, ×÷^, percentages, 'of'."""
    text = expression.strip().rstrip("=").strip()
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**").replace("√", "sqrt")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 2,340 -> 2340 (a comma between args keeps its space)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%\s*of\s+", r"(\1/100)*", text, flags=re.IGNORECASE)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%(?!\s*[\d(])", r"(\1/100)", text)
    return text


def calculate(expression: str) -> int | float:
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_LENGTH} characters")
    text = normalise(expression)
    if not text:
        raise CalculatorError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from exc
    except RecursionError as exc:
        raise CalculatorError("expression nested too deeply") from exc
    result = _eval(tree.body, 0)
    if isinstance(result, float) and (math.isnan(result) or math.isinf(result)):
        raise CalculatorError("result is not a finite number")
    if isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
        return int(result)
    return result


def _eval(node: ast.AST, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CalculatorError("expression nested too deeply")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_eval(node.operand, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            result = BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise CalculatorError("division by zero") from exc
        except OverflowError as exc:
            raise CalculatorError("result too large") from exc
        return _check_size(result)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        function = FUNCTIONS.get(node.func.id)
        if function is None:
            raise CalculatorError(f"unknown function {node.func.id!r}")
        args = [_eval(a, depth + 1) for a in node.args]
        if node.func.id == "factorial" and (not args or not isinstance(args[0], int) or args[0] > 1000):
            raise CalculatorError("factorial needs a whole number up to 1000")
        try:
            return _check_size(function(*args))
        except (ValueError, TypeError, OverflowError) as exc:
            raise CalculatorError(f"{node.func.id}: {exc}") from exc
    raise CalculatorError(f"not allowed in a calculation: {type(node).__name__}")


def _check_power(base: Any, exponent: Any) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent larger than {MAX_EXPONENT}")
    whole = isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1
    if whole and exponent * math.log10(abs(base)) > MAX_INT_DIGITS:
        raise CalculatorError("result too large")


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_DIGITS * 3.33:
        raise CalculatorError("result too large")
    if isinstance(value, float) and abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("result too large")
    return value


def format_result(value: int | float) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def describe(expression: str) -> str:
    """`expression = result`, the line both the tool and the retrieval-first path show; raises CalculatorError."""
    return f"{expression} = {format_result(calculate(expression))}"


def make_calculator_tool() -> Any:
    from langchain_core.tools import tool

    @tool("calculator")
    def calculator(expression: str) -> str:
        """Evaluate arithmetic exactly: + - * / ** % //, parentheses, percentages ("17.5% of 2,340"),
        and functions sqrt, log, ln, exp, sin, cos, tan, round, min, max. Use it for any calculation."""
        try:
            return describe(expression)
        except CalculatorError as exc:
            return f"Calculator error: {exc}"

    return calculator
