"""Errors raised by ``raftkv.transport``.

::

    TransportError          base of every error of this package
    ├── FrameError          bytes on a connection are not a valid frame stream (bad type byte,
    │   │                   malformed payload, protocol order violated); the connection is closed
    │   └── FrameTooLarge   a length prefix exceeds the connection's maximum frame size
    └── HandshakeError      the magic prefix or the hello was wrong, or the other side refused us

Every message is one line, fit for a log line. None of these ever escapes a server loop: a bad
connection is closed with a one-line log message and the server keeps serving the others.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with its line breaks folded into spaces."""
    return " ".join(text.split())


class TransportError(Exception):
    """Base class of the errors of ``raftkv.transport``; the message is always one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class FrameError(TransportError):
    """The byte stream is not a valid sequence of frames."""


class FrameTooLarge(FrameError):
    """A frame's length prefix is larger than the maximum frame size.

    Attributes:
        size: the announced payload size.
        limit: the maximum payload size of the connection.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"frame of {size} bytes exceeds the maximum frame size of {limit} bytes")


class HandshakeError(TransportError):
    """The connection's magic prefix or hello was refused (by us or by the other side)."""
