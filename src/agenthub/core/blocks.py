"""``AnswerBlocks``: a run's thinking and tool calls, kept (bounded) to be stored with its answer.

The live ``agent`` events show a turn's thinking and tool calls as they happen;
without this, a transcript keeps only the answer's text and a past turn loses
them. ``RunManager`` feeds each tool event here and, when it stores the
answer, adds ``meta()`` to the assistant message's ``meta``::

    {"thinking": "...", "tools": [{"id", "name", "args", "result", "isError"}, ...]}

``chat.history`` shows a message's ``meta`` as stored, so a client can render a
past turn as it rendered the live one. Both parts are bounded by
``max_chars`` each (``limits.transcript_blocks_chars``): a longer thinking text
is cut (``thinkingTruncated``); a tool call whose arguments or result do not
fit keeps a cut JSON text instead (``truncated`` on that call), and calls
past the bound are only counted (``toolsOmitted``). ``max_chars`` 0 keeps nothing.
"""

from __future__ import annotations

from typing import Any

from ..protocol import _json

__all__ = ["AnswerBlocks"]

ELLIPSIS = "…"


class AnswerBlocks:
    """The tool calls of one run (in call order) and the bound they share."""

    __slots__ = ("_left", "max_chars", "omitted", "tools")

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.tools: dict[str, dict[str, Any]] = {}  # toolCallId -> entry, insertion-ordered
        self.omitted = 0
        self._left = max_chars  # characters the tool calls may still take

    def _fit(self, entry: dict[str, Any], key: str, value: Any) -> None:
        """Store ``value`` under ``key`` if it fits the budget, else a cut JSON text of it."""
        text = _json.dumps_str(value)
        if len(text) <= self._left:
            entry[key] = value
            self._left -= len(text)
            return
        room = max(0, self._left)
        entry[key] = text[:room] + ELLIPSIS
        entry["truncated"] = True
        self._left -= room

    def tool_start(self, call_id: str, name: str, args: Any) -> None:
        if call_id in self.tools or self.max_chars == 0:
            return
        if self._left <= 0:
            self.omitted += 1
            return
        entry: dict[str, Any] = {"id": call_id, "name": name}
        self._left -= len(call_id) + len(name)
        self._fit(entry, "args", args)
        self.tools[call_id] = entry

    def tool_result(self, call_id: str, name: str, result: Any, is_error: bool) -> None:
        entry = self.tools.get(call_id)
        if entry is None:
            if self._left <= 0 or self.max_chars == 0:
                return  # its start was omitted (and counted) already, or nothing is kept
            entry = self.tools[call_id] = {"id": call_id, "name": name}
        entry["isError"] = is_error
        if self._left <= 0:
            entry["result"] = ELLIPSIS
            entry["truncated"] = True
            return
        self._fit(entry, "result", result)

    def meta(self, thinking: str) -> dict[str, Any]:
        """What goes into the stored answer's ``meta`` (empty when there is nothing to keep)."""
        out: dict[str, Any] = {}
        if thinking and self.max_chars > 0:
            if len(thinking) > self.max_chars:
                out["thinking"] = thinking[: self.max_chars] + ELLIPSIS
                out["thinkingTruncated"] = True
            else:
                out["thinking"] = thinking
        if self.tools:
            out["tools"] = list(self.tools.values())
        if self.omitted and self.max_chars > 0:
            out["toolsOmitted"] = self.omitted
        return out
