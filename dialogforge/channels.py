"""The trajectory's append-only channels, by state field.

The state annotates its message list with this very channel, and the SQLite
saver uses it to check and skip LangGraph's periodic snapshots. It sits apart
from ``dialogforge.records`` because LangGraph's channel module is slow to
import, and most commands never need it.
"""

from __future__ import annotations

from langgraph.channels.delta import DeltaChannel

from dialogforge.records import append_messages

DELTA_CHANNELS: dict[str, DeltaChannel] = {"messages": DeltaChannel(append_messages)}
