"""The Kaggle challenge CSV: `emotion,pixels,Usage`, `emotion,pixels`, or `pixels` only."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edge_runtime.labels import NUM_CLASSES
from train.data.dataset import UNLABELLED, DataError, Problems, Split

FER_SIDE = 48
USAGE_TO_SPLIT = {"training": "train", "publictest": "val", "privatetest": "test"}


def _parse_pixels(text: str) -> np.ndarray:
    values = np.array(text.split(), dtype=np.int64)  # ValueError on a non-numeric token
    if values.size != FER_SIDE * FER_SIDE:
        raise IndexError(values.size)
    if values.min() < 0 or values.max() > 255:
        raise OverflowError
    return values.astype(np.uint8).reshape(FER_SIDE, FER_SIDE)


def _rows(reader, path: Path):
    """The reader's rows; broken CSV (e.g. a field over the size limit) is a DataError naming the line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(path, f"line {reader.line_num}", f"not valid CSV: {exc}") from exc
        yield row


def load_csv(path: str | Path, problems: Problems) -> dict[str, Split]:
    path = Path(path)
    try:
        # errors="replace": a non-UTF-8 byte becomes U+FFFD, which the field checks below report with
        # its line (as a non-numeric pixel, a bad label, ...) instead of a UnicodeDecodeError traceback.
        fh = open(path, newline="", encoding="utf-8-sig", errors="replace")  # noqa: SIM115 - closed by `with fh` below
    except OSError as exc:
        raise DataError(path, None, f"cannot open: {exc.strerror}") from exc
    with fh:
        reader = csv.reader(fh)
        rows = _rows(reader, path)
        header = [h.strip().lower() for h in next(rows, [])]
        if any("\ufffd" in h for h in header):
            raise DataError(path, "line 1", "header is not UTF-8 text (expected emotion,pixels,Usage)")
        if "pixels" not in header:
            raise DataError(path, "line 1", f"header {header} has no 'pixels' column (expected emotion,pixels,Usage)")
        i_pix = header.index("pixels")
        i_emo = header.index("emotion") if "emotion" in header else None
        i_use = header.index("usage") if "usage" in header else None
        default_split = "train" if i_emo is not None else "test"
        buckets: dict[str, tuple[list, list, list]] = {}
        for line_no, row in enumerate(rows, start=2):
            if not row:
                continue
            where = f"line {line_no}"
            if len(row) != len(header):
                problems.report(DataError(path, where, f"{len(row)} fields, expected {len(header)}"))
                continue
            try:
                image = _parse_pixels(row[i_pix])
            except ValueError:
                problems.report(DataError(path, where, "pixels contain a non-numeric value"))
                continue
            except IndexError as exc:
                problems.report(DataError(path, where, f"{exc.args[0]} pixels, expected {FER_SIDE * FER_SIDE}"))
                continue
            except OverflowError:
                problems.report(DataError(path, where, "pixel value outside 0..255"))
                continue
            label = UNLABELLED
            if i_emo is not None:
                raw = row[i_emo].strip()
                if not raw.isdigit() or not 0 <= int(raw) < NUM_CLASSES:
                    problems.report(DataError(path, where, f"emotion {raw!r} is not a label 0..{NUM_CLASSES - 1}"))
                    continue
                label = int(raw)
            split = default_split
            if i_use is not None:
                usage = row[i_use].strip()
                split = USAGE_TO_SPLIT.get(usage.lower())
                if split is None:
                    problems.report(DataError(path, where, f"Usage {usage!r} is not Training/PublicTest/PrivateTest"))
                    continue
            imgs, labels, sources = buckets.setdefault(split, ([], [], []))
            imgs.append(image)
            labels.append(label)
            sources.append(f"{path.name}:{line_no}")
    return {
        name: Split(np.stack(imgs), np.asarray(labels, dtype=np.int64), sources)
        for name, (imgs, labels, sources) in buckets.items()
    }
