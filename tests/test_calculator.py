"""The calculator: what people type gives the right number; anything that isn't arithmetic is refused."""

from __future__ import annotations

import math

import pytest

from tools.calculator import CalculatorError, calculate, make_calculator_tool

CASES = [
    ("2 + 3 * 4", 14),
    ("(2 + 3) * 4", 20),
    ("17.5% of 2,340", 409.5),
    ("2^10", 1024),
    ("2**0.5", math.sqrt(2)),
    ("3 × 4 ÷ 2", 6),
    ("10 % 3", 1),
    ("50%", 0.5),
    ("7 // 2", 3),
    ("-3 + +5", 2),
    ("1,234,567 + 1", 1234568),
    ("sqrt(16) + log10(1000)", 7),
    ("round(2.675, 2)", 2.67),
    ("max(3, 9, 4)", 9),
    ("sin(pi / 2)", 1),
    ("1e3 / 8", 125),
    ("factorial(10)", 3628800),
    ("120 * 1.15 =", 138),
]


@pytest.mark.parametrize(("expression", "expected"), CASES)
def test_results(expression: str, expected: float) -> None:
    assert calculate(expression) == pytest.approx(expected)


REFUSED = [
    ("__import__('os').system('echo hi')", "not allowed"),
    ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
    ("open('/etc/passwd').read()", "not allowed"),
    ("x + 1", "unknown name"),
    ("eval('1+1')", "unknown function"),
    ("exec('import os')", "unknown function"),
    ("lambda: 1", "not allowed"),
    ("[1, 2, 3]", "not allowed"),
    ("'a' * 10", "not allowed"),
    ("9 ** 9 ** 9", "exponent"),
    ("10 ** 5000", "too large"),
    ("2 ** 100000", "exponent"),
    ("factorial(100000)", "factorial"),
    ("1 / 0", "division by zero"),
    ("(1+" * 100 + "1" + ")" * 100, "nested"),
    ("-" * 100 + "1", "nested"),
    ("1 +", "not an arithmetic"),
    ("", "empty"),
    ("1" * 600, "longer than"),
    ("sqrt(-1)", "sqrt"),
    ("1e308 * 10", "too large"),
]


@pytest.mark.parametrize(("expression", "reason"), REFUSED)
def test_refusals(expression: str, reason: str) -> None:
    with pytest.raises(CalculatorError, match=reason):
        calculate(expression)


def test_tool_reports_errors_as_text() -> None:
    tool = make_calculator_tool()
    assert tool.invoke({"expression": "17.5% of 2,340"}) == "17.5% of 2,340 = 409.5"
    assert tool.invoke({"expression": "__import__('os')"}).startswith("Calculator error:")
