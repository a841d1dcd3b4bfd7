"""How a command's result reaches the operator.

- ``--json``: the data as indented JSON, secrets removed: the format for scripts.
- stdout a terminal: rich tables and field lists (colour when the terminal has it).
- stdout anything else (a pipe, a file): plain, stable text, no colour and no wrapping: a table is
  one tab-separated header line and one tab-separated line per row (``cut -f``, ``awk -F'\\t'``),
  a field list is ``Key:  value`` lines, a summary its title and indented ``label  value`` lines.

The backfill's progress bar is drawn on stderr only while stderr is a terminal.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table as RichTable
from rich.text import Text

#: Never printed, whatever the output format.
SECRET_FIELDS = frozenset({"AuthKey", "access_key_secret", "callback_auth_key", "security_token", "SecurityToken",
                           "AccessKeySecret", "webhook_secret"})


def redact(value: Any) -> Any:
    """``value`` without the fields named in :data:`SECRET_FIELDS`, at any depth."""
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def compact(doc: Any) -> str:
    """JSON on one line, e.g. a TemplateConfig in a table cell."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Fields:
    """Labelled values; those without one (None or "") are left out. With a ``title`` it is a
    summary: the title, then the values indented."""

    pairs: Sequence[tuple[str, Any]]
    title: str | None = None

    def shown(self) -> list[tuple[str, str]]:
        return [(k, str(v)) for k, v in self.pairs if v not in (None, "")]


#: What a command's human rendering is made of; a ``str`` is one line (or "" for a blank one).
Block = str | Table | Fields


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _plain(block: Block) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, Table):
        lines = [block.headers, *([_cell(v) for v in row] for row in block.rows)]
        return "\n".join("\t".join(c.replace("\t", " ").replace("\n", " ") for c in line) for line in lines)
    shown = block.shown()
    width = max((len(k) for k, _ in shown), default=0)
    if block.title is None:
        return "\n".join(f"{(k + ':').ljust(width + 1)}  {v}" for k, v in shown)
    return "\n".join([block.title, *(f"  {k.ljust(width)}  {v}" for k, v in shown)])


def _rich(block: Block) -> RenderableType:
    if isinstance(block, str):
        return Text(block)
    if isinstance(block, Table):
        table = RichTable(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
        for header in block.headers:
            table.add_column(header, overflow="fold")  # fold, never cut: IDs and URLs stay whole
        for row in block.rows:
            table.add_row(*(_cell(v) for v in row))
        return table
    grid = RichTable.grid(padding=(0, 2))
    grid.add_column(style="bold" if block.title is None else None, no_wrap=True)
    grid.add_column(overflow="fold")
    for k, v in block.shown():
        grid.add_row(k if block.title else k + ":", v)
    if block.title is None:
        return grid
    return Group(Text(block.title, style="bold"), Padding(grid, (0, 0, 0, 2), expand=False))


class Output:
    """Where one invocation's results go (see the module's docstring)."""

    def __init__(self, *, as_json: bool, stream: TextIO | None = None):
        self.as_json = as_json
        self.stream = sys.stdout if stream is None else stream

    def emit(self, data: Any, human: Callable[[], Iterable[Block]]) -> None:
        """``--json``: ``data``, secrets removed; otherwise the blocks ``human()`` returns."""
        if self.as_json:
            print(json.dumps(redact(data), indent=2, ensure_ascii=False, default=str), file=self.stream)
            return
        blocks = list(human())
        if not self.stream.isatty():
            print("\n".join(_plain(b) for b in blocks), file=self.stream)
            return
        console = Console(file=self.stream, highlight=False)
        for block in blocks:
            console.print(_rich(block), soft_wrap=isinstance(block, str))


class ProgressBar:
    """A progress bar on ``stream`` (default stderr) while it is a terminal; otherwise nothing."""

    def __init__(self, description: str, stream: TextIO | None = None):
        stream = sys.stderr if stream is None else stream
        self.enabled = stream.isatty()
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[note]}"), console=Console(file=stream))
        self._task: TaskID | None = None
        self._description = description

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=None, note="")
        return self

    def update(self, done: int, total: int, note: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=done, total=total, note=note)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.enabled:
            self._progress.stop()
