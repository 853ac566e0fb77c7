"""The summary of a batch as a text table: input, output, status, time, voxels."""

from __future__ import annotations

from ._run import BatchRow

HEADER = ("input", "output", "status", "time", "voxels")


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def summary_rows(rows: list[BatchRow]) -> list[tuple[str, ...]]:
    """Each row's cells as the table shows them (the output column shows the table
    too when ``--measure`` wrote one)."""
    out = []
    for r in rows:
        where = " + ".join(p for p in (r.output, r.table) if p) or "-"
        out.append((r.input, where, r.status, _seconds(r.seconds),
                    f"{r.voxels:,}" if r.voxels else "-"))
    return out


def summary_table(rows: list[BatchRow]) -> str:
    """The table, columns aligned, then one line per failure with its reason, then the
    counts."""
    cells = [HEADER, *summary_rows(rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].rjust(widths[i]) if i >= 3 else c[i].ljust(widths[i])
                       for i in range(len(HEADER))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in rows:
        if r.error:
            lines.append(f"failed: {r.input}: {r.error}")
    counts = {s: sum(r.status == s for r in rows) for s in
              ("done", "already complete", "failed", "cancelled")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no dataset")
    return "\n".join(lines)
