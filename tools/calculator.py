"""A calculator the model can't turn into code execution: Python's `ast` walked over a whitelist, never `eval`.

Accepts what people type: `17.5% of 2,340`, `15 percent of 80`, `2^10`, `3 × 4 ÷ 2`, `3 x 4`, `sqrt(2)`,
`10 % 3`, `1e3`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import TypeAlias

from langchain_core.tools import BaseTool

from kbagent.errors import KbagentError
from tools.base import AgentTool, ToolParts

CALCULATOR_TOOL = "calculator"
MAX_EXPONENT = 10_000
MAX_MAGNITUDE = 1e300
MAX_INT_DIGITS = 4_000
MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))
MAX_LENGTH = 500
MAX_DEPTH = 60
MAX_NODES = 400  # syntax-tree nodes, after parsing
MAX_ARGS = 40  # for min, max and hypot
MAX_ROUND_DIGITS = 100
MAX_FACTORIAL = 1000
MAX_WORK = 4_000  # units of _cost: about twenty operations on the largest numbers allowed

Number: TypeAlias = int | float


class CalculatorError(KbagentError, ValueError):
    pass


BINARY: dict[type, Callable[[Number, Number], object]] = {  # a power may be complex: checked after
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY: dict[type, Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# name -> (function, fewest arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., object], int, int]] = {
    "sqrt": (math.sqrt, 1, 1),
    "cbrt": (lambda x: math.copysign(abs(float(x)) ** (1 / 3), x), 1, 1),
    "abs": (abs, 1, 1),
    "round": (round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "exp": (math.exp, 1, 1),
    "ln": (math.log, 1, 1),
    "log": (math.log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "sinh": (math.sinh, 1, 1),
    "cosh": (math.cosh, 1, 1),
    "tanh": (math.tanh, 1, 1),
    "degrees": (math.degrees, 1, 1),
    "radians": (math.radians, 1, 1),
    "min": (min, 2, MAX_ARGS),
    "max": (max, 2, MAX_ARGS),
    "factorial": (math.factorial, 1, 1),
    "hypot": (math.hypot, 1, MAX_ARGS),
}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def normalise(expression: str) -> str:
    """People's notation to Python's: thousands separators, ×÷^, percentages, 'of'."""
    text = expression.strip().rstrip("=").strip()
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**").replace("√", "sqrt")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 2,340 -> 2340 (a comma between args keeps its space)
    text = re.sub(r"(?<=\d)\s*(?:percent|per\s+cent)\b", "%", text, flags=re.IGNORECASE)  # 15 percent -> 15%
    text = re.sub(r"(?<=[\d)])\s*[xX]\s*(?=[\d(.])", "*", text)  # 3 x 4 -> 3*4
    # `(?<![\d.])`: a number is tried from its first digit only, so a long run of digits costs linear time
    text = re.sub(r"(?<![\d.])(\d+(?:\.\d+)?)\s*%\s*of\s+", r"(\1/100)*", text, flags=re.IGNORECASE)
    text = re.sub(r"(?<![\d.])(\d+(?:\.\d+)?)\s*%(?!\s*[\d(])", r"(\1/100)", text)
    return text


def calculate(expression: str) -> int | float:
    """The value of `expression`, or CalculatorError. Every step is bounded (operand and result sizes, tree
    size, total work), so no input holds the GIL for more than milliseconds."""
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_LENGTH} characters")
    text = normalise(expression)
    if not text:
        raise CalculatorError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from exc
    except (RecursionError, MemoryError) as exc:
        raise CalculatorError("expression nested too deeply") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError("expression too long")
    result = _Evaluation().run(tree.body, 0)
    if isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
        return int(result)
    return result


class _Evaluation:
    """One walk over the tree, with the work spent so far: each operation is paid for before it runs."""

    def __init__(self) -> None:
        self.work = 0

    def run(self, node: ast.AST, depth: int) -> Number:
        if depth > MAX_DEPTH:
            raise CalculatorError("expression nested too deeply")
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return _check_value(node.value)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise CalculatorError(f"unknown name {node.id!r}")
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            return UNARY[type(node.op)](self.run(node.operand, depth + 1))
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            return self._binary(node, depth)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self._call(node, node.func.id, depth)
        raise CalculatorError(f"not allowed in a calculation: {type(node).__name__}")

    def _binary(self, node: ast.BinOp, depth: int) -> Number:
        left, right = self.run(node.left, depth + 1), self.run(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            whole = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
            _check_power(left, right)
            self._spend(left, right, result_bits=_bits(left) * int(right) if whole else 0)
        elif isinstance(node.op, ast.Mult):
            self._spend(left, right, result_bits=_bits(left) + _bits(right))
        else:
            self._spend(left, right)
        try:
            return _check_value(BINARY[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise CalculatorError("division by zero") from exc
        except ArithmeticError as exc:  # OverflowError: a float too large, or an int too large for a float
            raise CalculatorError("result too large") from exc

    def _call(self, node: ast.Call, name: str, depth: int) -> Number:
        if name not in FUNCTIONS:
            raise CalculatorError(f"unknown function {name!r}")
        function, fewest, most = FUNCTIONS[name]
        if not fewest <= len(node.args) <= most:
            wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise CalculatorError(f"{name} takes {wanted} argument{'s' if most > 1 else ''}")
        args = [self.run(a, depth + 1) for a in node.args]
        _check_arguments(name, args)
        self._spend(*args)
        try:
            result = _check_value(function(*args))
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise CalculatorError(f"{name}: {exc}") from exc
        self._spend(result)
        return result

    def _spend(self, *operands: Number, result_bits: int = 0) -> None:
        """Pays for one operation before it runs. Multiplying or dividing n-bit numbers takes ~n² steps, so
        the price is the square of the largest size involved, in blocks of 1024 bits."""
        bits = max([result_bits, *(_bits(v) for v in operands)])
        self.work += (1 + bits // 1024) ** 2
        if self.work > MAX_WORK:
            raise CalculatorError("calculation too large")


def _bits(value: Number) -> int:
    return value.bit_length() if isinstance(value, int) else 64


def _check_arguments(name: str, args: list[Number]) -> None:
    """The arguments whose size, not value, would make a function slow."""
    if name == "factorial" and not (isinstance(args[0], int) and 0 <= args[0] <= MAX_FACTORIAL):
        raise CalculatorError(f"factorial needs a whole number from 0 to {MAX_FACTORIAL}")
    if name == "round" and len(args) == 2 and not (isinstance(args[1], int) and abs(args[1]) <= MAX_ROUND_DIGITS):
        raise CalculatorError(f"round's digits must be a whole number from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}")


def _check_power(base: Number, exponent: Number) -> None:
    """Refused before it runs: a power whose result would pass the size limit."""
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent larger than {MAX_EXPONENT}")
    whole = isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1
    if whole and exponent * math.log10(abs(base)) > MAX_INT_DIGITS:
        raise CalculatorError("result too large")


def _check_value(value: object) -> Number:
    """Every intermediate value: a real number, finite, within the size limits."""
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number (a negative number to a fractional power?)")
    if not isinstance(value, int | float):  # no function listed gives anything else
        raise CalculatorError(f"the result is not a number: {type(value).__name__}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("result too large")
    if isinstance(value, float) and math.isnan(value):
        raise CalculatorError("result is not a finite number")
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


def make_calculator_tool() -> BaseTool:
    from langchain_core.tools import tool

    @tool(CALCULATOR_TOOL)
    def calculator(expression: str) -> str:
        """Evaluate arithmetic exactly: + - * / ** % //, parentheses, percentages ("17.5% of 2,340"),
        and functions sqrt, log, ln, exp, sin, cos, tan, round, min, max. Use it for any calculation."""
        try:
            return describe(expression)
        except CalculatorError as exc:
            return f"Calculator error: {exc}"

    return calculator


def agent_tools(parts: ToolParts) -> list[AgentTool]:
    """The calculator, for both paths (the small local model gets a shorter description)."""
    local = "Evaluate arithmetic exactly, e.g. 120 - 45 or 3 * 18.50 or 15% of 80."
    return [AgentTool(make_calculator_tool(), local=True, local_description=local, local_args=("expression",))]
