"""Argument types for the commands' parsers: comma-separated integers and names."""

from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """'784,30,10' -> [784, 30, 10]; anything else is argparse's usage error."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def name_list(text: str) -> str | list[str]:
    """'relu,softmax' -> ['relu', 'softmax']; one name stays a string (every layer)."""
    names = text.split(",")
    return names[0] if len(names) == 1 else names
