"""A picture of the ledger: which version held Production, Staging and each alias, step by step.

`steps()` turns ledger events into what each lane held after each change (pure, no matplotlib);
`render()` draws that as broken bars, one lane per stage and alias, with promotions, rollbacks and
refused attempts marked, and returns PNG bytes. matplotlib is imported inside `render()` (Agg
canvas, no pyplot), so the rest of the tool never pays for it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from registry.errors import BadInput, NotFound
from registry.ledger import Event
from registry.timetravel import State, applied

STAGE_LANES = ("Production", "Staging")
# Colours of versions 1, 2, 3, ... (matplotlib's tab10, without the red used for rollbacks).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
# How a step of each kind is marked: colour, line style, marker, legend text.
MARKS: dict[str, tuple[str, Literal["-", "--", ":"], str, str]] = {
    "promote": ("#2ca02c", "-", "^", "promotion to Production"),
    "rollback": ("#d62728", "--", "v", "rollback"),
    "refused": ("#7f7f7f", ":", "x", "refused (changed nothing)"),
}


@dataclasses.dataclass(frozen=True)
class Step:
    """One change made by one command, and what every lane held afterwards."""

    label: str
    time: str
    kind: str  # "promote", "rollback", "refused" or "" (nothing to mark)
    held: dict[str, tuple[int, ...]]  # lane ("Production", "Staging", "@prod") -> versions


def lane_of(alias: str) -> str:
    return "@" + alias


def steps(events: list[Event]) -> list[Step]:
    """Group `events` into steps (a stage move with its archives and alias move is one) and replay them.

    Replayed as `history --at` replays them (`timetravel.State`): a refused attempt is a step of its
    own, labelled as refused, that leaves every lane as it was.
    """
    groups: list[list[Event]] = []
    for event in events:
        if groups and _belongs_to(groups[-1], event):
            groups[-1].append(event)
        else:
            groups.append([event])
    state = State()
    seen: list[str] = []  # aliases ever set: a deleted alias keeps its (empty) lane
    found: list[Step] = []
    for group in groups:
        for event in group:
            state.apply(event)
            if applied(event) and event.alias is not None and event.alias not in seen:
                seen.append(event.alias)
        head = group[0]
        held = {lane: tuple(numbers) for lane, numbers in state.stages().items()}
        held |= {lane_of(a): (state.aliases[a],) if a in state.aliases else () for a in seen}
        found.append(Step(_label(head), head.time, _kind(head), held))
    return found


def _kind(head: Event) -> str:
    if head.result == "refused":
        return "refused"
    if head.to == "Production" and head.alias is None:
        return "rollback" if head.action == "rollback" else "promote" if head.action == "stage" else ""
    return ""


def _belongs_to(group: list[Event], event: Event) -> bool:
    """True when `event` was written by the same command as `group`: a command's changes share one
    ledger seq (a ledger written before that format shows one step per change)."""
    return event.seq == group[0].seq


def _label(event: Event) -> str:
    if event.result == "refused":
        return f"refused: {_change(event)}"
    if event.action == "baseline":
        return "ledger starts"
    if event.action == "lifecycle":
        return f"lifecycle: {event.to}"
    if event.action == "train":
        return f"v{event.version} registered"
    if event.action == "rollback":
        return f"rollback to v{event.version}"
    return _change(event)


def _change(event: Event) -> str:
    """What `event` moved: `@prod → v2`, `@prod deleted` or `v2 → Production`."""
    if event.alias is not None and (event.to is None or event.to.isdigit()):  # not a stage move with an alias
        return f"@{event.alias} → v{event.version}" if event.to else f"@{event.alias} deleted"
    if event.to:
        return f"v{event.version} → {event.to}"
    return event.action


def colour(number: int) -> str:
    return PALETTE[(number - 1) % len(PALETTE)]


def render(events: list[Event], model: str) -> bytes:
    """The timeline of `model` as PNG bytes; NotFound when the ledger is empty."""
    import io

    from matplotlib.artist import Artist
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    found = steps(events)
    if not found:
        raise NotFound(f"the ledger of {model!r} is empty: nothing to plot; make a change first")
    lanes = [*STAGE_LANES, *sorted(lane for lane in found[-1].held if lane not in STAGE_LANES)]
    count = len(found)
    figure = Figure(figsize=(min(max(8.0, 1.2 * count + 2.5), 28.0), 2.6 + 0.6 * len(lanes)), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    versions: set[int] = set()
    for row, lane in enumerate(lanes):
        y = len(lanes) - 1 - row
        start = 0
        for index in range(1, count + 1):
            current = found[start].held.get(lane, ())
            if index < count and found[index].held.get(lane, ()) == current:
                continue
            if current:
                versions.update(current)
                axes.broken_barh(
                    [(start, index - start)], (y - 0.35, 0.7),
                    facecolors=colour(max(current)), edgecolor="white", linewidth=1.5,
                )  # fmt: skip
                axes.text(
                    (start + index) / 2, y, ", ".join(f"v{n}" for n in current),
                    ha="center", va="center", color="white", fontsize=10, fontweight="bold",
                )  # fmt: skip
            start = index
    for index, step in enumerate(found):
        if step.kind:
            shade, line, marker, _ = MARKS[step.kind]
            axes.axvline(index, color=shade, linestyle=line, linewidth=2, zorder=3)
            axes.plot(
                [index], [len(lanes) - 0.45], marker=marker, markersize=10, color=shade,
                clip_on=False, zorder=4,
            )  # fmt: skip
    axes.set_yticks(range(len(lanes)), labels=list(reversed(lanes)))
    axes.set_ylim(-0.6, len(lanes) - 0.4)
    axes.set_xlim(0, count)
    days = {step.time[:10] for step in found}
    ticks = [f"{step.label}\n{_clock(step.time, len(days) > 1)}" for step in found]
    axes.set_xticks([*range(count), count], labels=[*ticks, "now"], fontsize=8)
    if count > 10:
        for tick in axes.get_xticklabels()[:-1]:
            tick.set_rotation(30)
            tick.set_horizontalalignment("right")
    axes.grid(axis="x", color="#dddddd", zorder=0)
    axes.set_axisbelow(True)
    span = found[0].time[:10] if len(days) == 1 else f"{min(days)} to {max(days)}"
    axes.set_title(f"{model}: who held each stage and alias ({span}, UTC)", loc="left")
    legend: list[Artist] = [Patch(facecolor=colour(n), label=f"version {n}") for n in sorted(versions)]
    legend += [
        Line2D([], [], color=shade, marker=marker, linestyle=line, label=text)
        for kind, (shade, line, marker, text) in MARKS.items()
        if kind != "refused" or any(step.kind == kind for step in found)
    ]
    axes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write(events: list[Event], model: str, path: str | Path) -> Path:
    """Draw the timeline of `model` into the PNG file `path`; returns the path."""
    data = render(events, model)
    target = Path(path)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    return target


def _clock(time: str, with_date: bool) -> str:
    """`2026-11-30T12:00:05Z` as `12:00:05`, or `11-30 12:00` when the steps span several days."""
    return f"{time[5:10]} {time[11:16]}" if with_date else time[11:19]
