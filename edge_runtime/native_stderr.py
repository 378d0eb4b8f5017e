"""Native libraries' stderr chatter, caught at the file-descriptor level and passed to logging.

LiteRT prints `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` on every interpreter, and
the TFLite converter prints `fully_quantize: 0, inference_type: 6, ...`, straight from C++ to file
descriptor 2, where Python's sys.stderr cannot stop them. `captured_stderr` points fd 2 at a
temporary file for the duration of a block and logs what was written there at DEBUG (`-v` shows it;
at WARNING when the block raised, since then it may say why).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def captured_stderr(logger: logging.Logger) -> Iterator[None]:
    """Run the block with fd 2 going to a temporary file; log its lines afterwards."""
    if sys.stderr is not None:  # None when the process started without fd 2
        sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (started with 2>&-): nothing to catch
            yield
            return
        failed = True
        try:
            os.dup2(sink.fileno(), 2)
            yield
            failed = False
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            level = logging.WARNING if failed else logging.DEBUG
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip():
                    logger.log(level, "%s", line)
