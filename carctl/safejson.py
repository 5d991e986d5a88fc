"""JSON from outside the process, parsed totally and with limits.

Rules of this module:
- loads() returns a JSON value or raises JsonRefused with a sentence naming the problem; no other exception leaves
  it, whatever the bytes (bad UTF-8, a lone surrogate, `[` nested 100,000 deep, a 400-digit number, NaN).
- Limits, all checked: the size in bytes, the nesting depth, the characters of one number, the number of values.
  The number of values is bounded before parsing too, from the separators in the text (every value past the first
  needs a `,` or a `:`), so `[1,1,1,…]` filling the size limit costs a count of bytes, not the building of a list
  of millions.
  Numbers are finite (1e400 and NaN are refused); a key given twice is refused (two readers could take different
  ones); strings are valid Unicode (no lone surrogates, so anything parsed can be encoded again as UTF-8).
- Used for every JSON that crosses into a process: platform commands, the side channels between the firmware's
  processes, the simulator's control channel, and the JSON files the firmware reads back.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """Input that is not acceptable JSON; the message says why in one sentence."""


def _reject_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a number JSON allows")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonRefused(f"key {key[:40]!r} appears twice")
        result[key] = value
    return result


def loads(data: bytes | str, *, max_bytes: int = 65536, max_depth: int = 16, max_number_chars: int = 32,
          max_values: int = 10_000) -> Any:
    """The JSON value in ``data``; JsonRefused if it is too large, not UTF-8, not JSON, or past any limit."""
    if len(data) > max_bytes:
        raise JsonRefused(f"too large ({len(data)} bytes, at most {max_bytes})")
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        separators = data.count(b",") + data.count(b":")
    elif isinstance(data, str):
        separators = data.count(",") + data.count(":")
    else:
        raise JsonRefused(f"not bytes or text ({type(data).__name__})")
    # Separators inside strings count too, so this bound is loose (twice the limit) and never refuses what the
    # exact count below would take for a text without them.
    if separators > 2 * max_values:
        raise JsonRefused(f"more than {max_values} values")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("not UTF-8 text") from None
    else:
        text = data

    def parse_int(digits: str) -> int:
        if len(digits) > max_number_chars:
            raise JsonRefused(f"a number has more than {max_number_chars} characters")
        return int(digits)

    def parse_float(digits: str) -> float:
        if len(digits) > max_number_chars:
            raise JsonRefused(f"a number has more than {max_number_chars} characters")
        value = float(digits)
        if not math.isfinite(value):
            raise JsonRefused(f"the number {digits[:40]} is out of range")
        return value

    try:
        value = json.loads(text, parse_int=parse_int, parse_float=parse_float, parse_constant=_reject_constant,
                           object_pairs_hook=_no_duplicate_keys)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(f"nested more than {max_depth} deep") from None
    except ValueError as error:  # json.JSONDecodeError among them
        raise JsonRefused(f"not JSON ({str(error)[:80]})") from None
    _check_shape(value, max_depth, max_values)
    return value


def _check_shape(value: Any, max_depth: int, max_values: int) -> None:
    """Depth, count and strings, walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while pending:
        item, depth = pending.pop()
        seen += 1
        if seen > max_values:
            raise JsonRefused(f"more than {max_values} values")
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise JsonRefused("a string holds a lone surrogate (not valid Unicode)")
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise JsonRefused(f"nested more than {max_depth} deep")
            if isinstance(item, dict):
                for key, member in item.items():
                    if _SURROGATE.search(key):
                        raise JsonRefused("a key holds a lone surrogate (not valid Unicode)")
                    pending.append((member, depth + 1))
            else:
                pending.extend((member, depth + 1) for member in item)


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, for the side channels (the counterpart of loads)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
