"""Sizes and durations as people read them (KiB/MiB/GiB, "1.2 s", "4 h"); JSON keeps the raw numbers."""
from __future__ import annotations


def size(n: int | float | None) -> str:
    """Binary units: 512 B, 1.5 KiB, 630.2 MiB, 1.1 GiB."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def seconds(s: int | float | None) -> str:
    """A measured duration: 0.35 s, 1.2 s, 42 s, 3 min 05 s, 4 h, 4 h 12 min, 2 d 3 h."""
    if s is None:
        return "—"
    s = float(s)
    if s < 1:
        return f"{s:.2f} s"
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    total = round(s)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" + (f" {secs:02d} s" if secs else "")
