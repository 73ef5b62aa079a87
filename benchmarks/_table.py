"""The one table every benchmark prints: measure, value, unit, budget."""

from __future__ import annotations

Row = tuple[str, float, str, str]


def print_table(rows: list[Row], title: str | None = None) -> None:
    if title:
        print(title)
    print(f"{'measure':<52} {'value':>12} {'unit':<9} {'budget':>8}")
    for name, value, unit, budget in rows:
        if unit == "%":
            text, unit = f"{value:.0%}", ""
        elif abs(value) >= 1000:
            text = f"{value:,.0f}"
        else:
            text = f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
        print(f"{name:<52} {text:>12} {unit:<9} {budget:>8}")
