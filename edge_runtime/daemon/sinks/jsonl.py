"""JSON lines to stdout or a file, one object per event; a file rotates past a size (stdlib logging's
RotatingFileHandler: PATH, PATH.1 ... PATH.N)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys

from edge_runtime.daemon.config import JsonlConfig
from edge_runtime.daemon.sinks import Sink


class JsonlSink(Sink):
    def __init__(self, config: JsonlConfig):
        self.wants_faces = config.faces
        if config.path == "-":
            self.handler: logging.Handler = logging.StreamHandler(sys.stdout)
        else:
            # delay=False: a path that cannot be written fails now, at start, not at the first face.
            try:
                self.handler = logging.handlers.RotatingFileHandler(
                    config.path, maxBytes=config.max_bytes, backupCount=config.backups, encoding="utf-8")
            except OSError as exc:
                raise OSError(f"jsonl.path: cannot write {config.path}: {exc.strerror or exc}") from exc
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        # A logger of its own that only writes here: never the console log, never another sink's file.
        self.logger = logging.getLogger(f"fer_edge.jsonl.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)

    def _write(self, record: dict) -> None:
        self.logger.info(json.dumps(record, separators=(",", ":")))

    def event(self, record: dict) -> None:
        self._write(record)

    def camera(self, record: dict) -> None:
        self._write(record)

    def faces(self, records: list[dict]) -> None:
        if self.wants_faces:
            for record in records:
                self._write(record)

    def close(self) -> None:
        self.handler.flush()
        self.logger.removeHandler(self.handler)
        if self.handler.stream is not sys.stdout:
            self.handler.close()
