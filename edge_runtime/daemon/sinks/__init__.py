"""Where events go. Every sink gets the same calls from the processing loop and must return at once:
a slow disk or an absent broker never holds up the camera."""

from __future__ import annotations

from edge_runtime.daemon.state import State


class Sink:
    """The calls a sink may implement; each does nothing by default."""

    def event(self, record: dict) -> None:
        """A face event (type new, update or end)."""

    def camera(self, record: dict) -> None:
        """The camera went online or offline (type camera, state, reason)."""

    def faces(self, records: list[dict]) -> None:
        """Every face of one processed frame (type face), in the `detect --json` record format."""

    def state(self, state: State) -> None:
        """Faces present, the dominant emotion or the camera state changed."""

    def stats(self, stats: dict) -> None:
        """Periodic statistics."""

    def close(self) -> None:
        """Flush and let go (publish offline); called once, at shutdown."""
