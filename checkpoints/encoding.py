"""Compact bytes for checkpoint rows: packed ids and compressed, type-tagged values.

Every value still goes through the strict serializer (``dialogforge.checkpoints.serde``);
this module only packs the serializer's ``(type, bytes)`` pair into one
column and deflates it when that pays. Ids in UUID form (LangGraph's
checkpoint and task ids) are stored as their 16 bytes instead of 36
characters; anything else is kept as text, so every id round-trips exactly.
"""

from __future__ import annotations

import uuid
import zlib
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

_TYPE_CODES = {"msgpack": 1, "null": 2, "bytes": 3, "bytearray": 4, "json": 5, "empty": 6}
_TYPE_NAMES = {code: name for name, code in _TYPE_CODES.items()}
_COMPRESSED = 0x80
_NAMED_TYPE = 0x00  # followed by a length byte and the type name
COMPRESS_FROM = 96  # bytes; shorter payloads rarely shrink

# A fixed preset dictionary: the strings every serialized state value repeats.
# Changing it makes stored compressed values unreadable, so it never changes;
# a new one would get a new flag.
_ZDICT = b"".join([
    b"\xacgraphs.state",
    b"\xa8Counters\xaauser_turns\xafassistant_turns\xaatool_calls\xabtool_errors\xa8requests",
    b"\xb2steps_this_request\xabstep_counts\xaftasks_completed\xa5usage",
    b"\xaaTokenUsage\xa6prompt\xaacompletion\xa9reasoning\xa5calls",
    b"\xa4Task\xa4goal\xa8subtasks\xa6rubric\xaadifficulty\xaeexpected_tools\xa6status\xa6active\xa9completed",
    b"\xaaRubricItem\xa9criterion\xa8category\xa8critical\xaastructural\xabnoncritical",
    b"\xa8ToolSpec\xa4type\xa8function\xabFunctionSpec\xa4name\xabdescription\xaaparameters",
    b"\xadresult_schema\xa6source\xabsynthesized\xa3sql\xa6object\xaaproperties\xa8required\xa6string\xa7integer",
    b"\xa8ToolCall\xa2id\xa9arguments\xadraw_arguments",
    b"\xa7Message\xa4role\xa4user\xa9assistant\xa4tool\xa7content\xa9reasoning\xaatool_calls",
    b"\xactool_call_id\xa4name\xa8is_error\xc2\xaatask_index",
    b"\xa7channel_versions\xadversions_seen\xafupdated_channels\xa8metadata\xa6source\xa4loop\xa4step\xa7parents",
    b"\xbccounters_since_delta_snapshot\xa8messages\xa8counters\xa5tasks\xa5tools\xa5world\xa9carryover",
    b"branch:to:propose_task\xb9branch:to:synthesize_tools\xb6branch:to:simulate_user",
    b"\xb2branch:to:run_agent\xb6branch:to:execute_tools\xa9__start__\xa9__input__",
    b"\xacpropose_task\xb0synthesize_tools\xadsimulate_user\xa9run_agent\xadexecute_tools",
    b"\x91\x87\xa4role\xa9assistant\xa7content\xa0\xa9reasoning\xc0\xaatool_calls\x91",
    b"\x91\x88\xa4role\xa4tool\xa7content",
    b"\x91\x88\xa4role\xa4user\xa7content",
])


def pack_id(text: str) -> bytes | str:
    """A UUID-shaped id as 16 bytes (same sort order as its text); any other id as text."""
    if len(text) == 36:
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            return text
        if str(parsed) == text:
            return parsed.bytes
    return text


def unpack_id(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(uuid.UUID(bytes=bytes(value)))


def encode(serde: SerializerProtocol, value: Any, *, compress: bool = True) -> bytes:
    type_name, payload = serde.dumps_typed(value)
    return pack_typed(type_name, payload, compress=compress)


def decode(serde: SerializerProtocol, data: bytes) -> Any:
    return serde.loads_typed(unpack_typed(data))


def pack_typed(type_name: str, payload: bytes, *, compress: bool = True) -> bytes:
    code = _TYPE_CODES.get(type_name)
    header = bytes([code]) if code else bytes([_NAMED_TYPE, len(type_name)]) + type_name.encode()
    if compress and len(payload) >= COMPRESS_FROM:
        squeezed = _deflate(payload)
        if len(squeezed) < len(payload):
            return bytes([header[0] | _COMPRESSED]) + header[1:] + squeezed
    return header + payload


def unpack_typed(data: bytes) -> tuple[str, bytes]:
    data = bytes(data)
    first = data[0]
    compressed = bool(first & _COMPRESSED)
    code = first & ~_COMPRESSED
    if code == _NAMED_TYPE:
        size = data[1]
        type_name, rest = data[2 : 2 + size].decode(), data[2 + size :]
    else:
        type_name, rest = _TYPE_NAMES[code], data[1:]
    return type_name, _inflate(rest) if compressed else rest


def _deflate(payload: bytes) -> bytes:
    # The window and hash table sized to what they must reach (the dictionary and the payload):
    # a compressor's set-up zeroes them, and at deflate's largest (32 KB, memLevel 9) that took
    # ~85 us, ten times the compression of a usual 1 KB value. A window that covers dictionary
    # and payload finds every match the largest would; any window inflates with ``_inflate``'s.
    bits = max(_MIN_WINDOW_BITS, min(15, (len(_ZDICT) + len(payload) + _DEFLATE_LOOKAHEAD).bit_length()))
    packer = zlib.compressobj(6, zlib.DEFLATED, -bits, 9 if bits == 15 else 6, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    return packer.compress(payload) + packer.flush()


_MIN_WINDOW_BITS = 11
_DEFLATE_LOOKAHEAD = 262  # deflate's MIN_LOOKAHEAD: a match reaches back at most the window less this


def _inflate(payload: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, _ZDICT)
    return unpacker.decompress(payload) + unpacker.flush()
