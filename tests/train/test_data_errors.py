"""Bad input: a DataError naming the file and the row/record/offset; skip_bad keeps the good ones."""

from __future__ import annotations

import re

import numpy as np
import pytest

from train.data import DataError, Dataset, load_dataset
from train.data.binary import RECORD, load_binary
from train.data.dataset import Problems, Split
from train.data.folders import load_folders, looks_like_folders


def _error(path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    return info.value


def _assert_names(err: DataError, path, where: str | None = None) -> None:
    assert str(path) in str(err)
    if where is not None:
        assert re.search(rf"\b{where}\b", str(err)), str(err)


def _pixels(count: int = 2304, token_at: tuple[int, str] | None = None) -> str:
    tokens = ["7"] * count
    if token_at:
        tokens[token_at[0]] = token_at[1]
    return " ".join(tokens)


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        ([3, _pixels(2303), "Training"], "2303 pixels, expected 2304"),
        ([3, _pixels(2305), "Training"], "2305 pixels, expected 2304"),
        ([3, "", "Training"], "0 pixels, expected 2304"),
        ([3, _pixels(token_at=(100, "abc")), "Training"], "non-numeric"),
        ([3, _pixels(token_at=(5, "256")), "Training"], "outside 0..255"),
        ([7, _pixels(), "Training"], "not a label 0..6"),
        ([-1, _pixels(), "Training"], "not a label 0..6"),
        (["happy", _pixels(), "Training"], "not a label 0..6"),
        ([3, _pixels(), "Validation"], "not Training/PublicTest/PrivateTest"),
        ([3, _pixels()], "2 fields, expected 3"),
    ],
)
def test_bad_csv_row_names_file_and_line(write_csv, faces, bad_row, problem):
    good = faces(3)
    rows = [[0, good[0], "Training"], [1, good[1], "Training"], bad_row, [2, good[2], "PublicTest"]]
    path = write_csv("fer.csv", "emotion,pixels,Usage", rows)  # the bad row is line 4; the header is line 1

    err = _error(path)
    _assert_names(err, path, "line 4")
    assert problem in str(err)

    ds = load_dataset(path, skip_bad=True)
    assert [str(e) for e in ds.skipped] == [str(err)]
    np.testing.assert_array_equal(ds.split("train").images, good[:2])
    assert ds.split("train").labels.tolist() == [0, 1]
    assert ds.split("val").labels.tolist() == [2]


def test_csv_without_pixels_column_names_the_header(write_csv):
    path = write_csv("labels.csv", "emotion,Usage", [[0, "Training"]])
    _assert_names(_error(path), path, "line 1")


def test_csv_that_is_not_utf8_names_the_line_instead_of_a_decode_traceback(tmp_path, faces):
    path = tmp_path / "latin.csv"
    good = " ".join(str(v) for v in faces(1)[0].reshape(-1))
    path.write_bytes(f"emotion,pixels\n0,{good}\n".encode() + b"1,\xe9\xff 2 3\n" + f"2,{good}\n".encode())
    err = _error(path)
    _assert_names(err, path, "line 3")
    ds = load_dataset(path, skip_bad=True)
    assert len(ds.skipped) == 1 and ds.split("train").labels.tolist() == [0, 2]


def test_utf16_csv_names_the_header_line(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n", encoding="utf-16")
    err = _error(path)
    _assert_names(err, path, "line 1")
    assert "UTF-8" in str(err)


def test_csv_with_an_oversized_field_is_a_data_error(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("emotion,pixels\n0,\"" + "1 " * 100_000 + "\"\n")
    _assert_names(_error(path), path, "line 2")


def test_truncated_binary_names_the_byte_offset(write_bin, faces):
    path = write_bin("fer2013.bin", [0, 1, 2], faces(3), tail=b"\x03" + bytes(100))
    err = _error(path)
    _assert_names(err, path, "record 3")
    assert f"byte offset {3 * RECORD}" in str(err) and "truncated: 101 bytes" in str(err)

    ds = load_dataset(path, skip_bad=True)
    assert len(ds.skipped) == 1
    np.testing.assert_array_equal(ds.split("train").images, faces(3))
    assert ds.split("train").labels.tolist() == [0, 1, 2]


def test_binary_label_byte_out_of_range_names_record_and_offset(write_bin, faces):
    imgs = faces(4)
    path = write_bin("fer2013.bin", [5, 7, 6, 255], imgs)
    err = _error(path)
    _assert_names(err, path, "record 1")
    assert f"byte offset {RECORD}" in str(err) and "label byte 7" in str(err)

    ds = load_dataset(path, skip_bad=True)
    assert [e.where for e in ds.skipped] == [f"record 1 at byte offset {RECORD}",
                                             f"record 3 at byte offset {3 * RECORD}"]
    np.testing.assert_array_equal(ds.split("train").images, imgs[[0, 2]])
    assert ds.split("train").labels.tolist() == [5, 6]
    assert ds.split("train").sources == ["fer2013.bin#0", "fer2013.bin#2"]


def test_binary_with_only_bad_records_or_no_bytes_is_refused(write_bin, faces, tmp_path):
    _assert_names(_error(write_bin("bad.bin", [9], faces(1)), skip_bad=True), tmp_path / "bad.bin")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert "empty" in str(_error(empty))


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("note.jpg", b"this is a text file, not a JPEG", "not a decodable image"),
        ("empty.png", b"", "not a decodable image"),
        ("notes.txt", b"angry faces from the web", "not an image file"),
    ],
)
def test_bad_file_in_a_class_folder_is_named(tmp_path, write_image, faces, name, content, problem):
    imgs = faces(2)
    write_image(tmp_path / "fer" / "train" / "happy" / "a.png", imgs[0])
    write_image(tmp_path / "fer" / "train" / "sad" / "b.png", imgs[1])
    bad = tmp_path / "fer" / "train" / "sad" / name
    bad.write_bytes(content)

    err = _error(tmp_path / "fer")
    assert err.path == str(bad) and problem in str(err)

    ds = load_dataset(tmp_path / "fer", skip_bad=True)
    assert [e.path for e in ds.skipped] == [str(bad)]
    np.testing.assert_array_equal(ds.split("train").images, imgs)
    assert ds.split("train").labels.tolist() == [3, 4]


def test_unknown_class_folder_is_named_even_when_skipping(tmp_path, write_image, faces):
    write_image(tmp_path / "fer" / "train" / "happy" / "a.png", faces(1)[0])
    write_image(tmp_path / "fer" / "train" / "contempt" / "b.png", faces(1)[0])
    err = _error(tmp_path / "fer", skip_bad=True)
    assert err.path == str(tmp_path / "fer" / "train" / "contempt") and "unknown class folder" in str(err)


def test_empty_split_is_named(tmp_path, write_image, faces):
    write_image(tmp_path / "fer" / "train" / "happy" / "a.png", faces(1)[0])
    (tmp_path / "fer" / "val" / "happy").mkdir(parents=True)
    err = _error(tmp_path / "fer")
    assert err.path == str(tmp_path / "fer" / "val") and "empty split" in str(err)


def test_split_of_only_unreadable_images_is_empty_even_when_skipping(tmp_path):
    bad = tmp_path / "fer" / "happy" / "a.png"
    bad.parent.mkdir(parents=True)
    bad.write_text("nope")
    err = _error(tmp_path / "fer", skip_bad=True)
    assert err.path == str(tmp_path / "fer") and "no readable face images" in str(err)


def test_stray_folder_beside_splits_is_named(tmp_path, write_image, faces):
    write_image(tmp_path / "fer" / "train" / "happy" / "a.png", faces(1)[0])
    (tmp_path / "fer" / "extras").mkdir()
    err = _error(tmp_path / "fer")
    assert err.path == str(tmp_path / "fer") and "extras" in str(err)


def test_missing_path_is_named(tmp_path):
    for fmt in (None, "csv", "binary", "folders"):
        err = _error(tmp_path / "nowhere.csv", fmt=fmt)
        assert str(tmp_path / "nowhere.csv") in str(err), fmt


def test_unknown_format_is_named(tmp_path):
    path = tmp_path / "faces.parquet"
    path.write_bytes(b"PAR1")
    err = _error(path)
    assert err.path == str(path) and "--format" in str(err)
    err = _error(path, fmt="parquet")
    assert err.path == str(path) and "unknown format 'parquet'" in str(err)


def test_folder_without_splits_or_classes_is_refused(tmp_path):
    (tmp_path / "photos" / "holiday").mkdir(parents=True)
    err = _error(tmp_path / "photos")
    assert err.path == str(tmp_path / "photos")


def test_csv_data_cannot_be_asked_for_another_input_size(write_csv, faces):
    path = write_csv("fer.csv", "emotion,pixels", [[0, faces(1)[0]]])
    assert "100" in str(_error(path, size=100))


# Each message word for word: one sentence naming the file (and the place in it).

def message(path, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path, *args, **kwargs)
    return str(info.value)


def test_data_errors_name_the_file_and_the_place():
    assert str(DataError("a.csv", "line 3", "bad")) == "a.csv, line 3: bad"
    assert str(DataError("a.csv", None, "bad")) == "a.csv: bad"
    assert str(DataError("a.csv", "", "bad")) == "a.csv: bad"
    err = DataError("a.csv", "line 3", "bad")
    assert (err.path, err.where, err.problem) == ("a.csv", "line 3", "bad")


def test_path_and_format_messages(tmp_path):
    assert message(tmp_path / "nope") == f"{tmp_path / 'nope'}: no such file or folder"
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "misc").mkdir()
    assert message(tmp_path / "stuff") == (f"{tmp_path / 'stuff'}: folder holds neither split folders "
                                           "(train/val/test), class folders nor binary record files "
                                           "(train.bin, val.bin)")
    (tmp_path / "a.txt").write_text("x")
    assert message(tmp_path / "a.txt") == f"{tmp_path / 'a.txt'}: cannot tell the format from '.txt'; use " \
                                          "--format {csv,binary,folders}"
    assert message(tmp_path / "a.txt", "xml") == f"{tmp_path / 'a.txt'}: unknown format 'xml'; expected one of " \
                                                 "csv, binary, folders"


def test_a_csv_with_only_a_header_has_no_faces(tmp_path):
    (tmp_path / "empty.csv").write_text("emotion,pixels,Usage\n")
    assert message(tmp_path / "empty.csv") == f"{tmp_path / 'empty.csv'}: no faces found"


def test_other_sizes_need_image_folders(write_csv, faces):
    path = write_csv("fer.csv", "emotion,pixels", [[1, faces(1)[0]]])
    assert message(path, size=64) == f"{path}: csv data are 48x48 faces; a model input of 64 needs resizing first"
    assert load_dataset(path).path == str(path) and load_dataset(path).format == "csv"


def test_binary_messages(tmp_path, write_bin, faces):
    (tmp_path / "empty.bin").write_bytes(b"")
    assert message(tmp_path / "empty.bin") == f"{tmp_path / 'empty.bin'}: file is empty"
    one = tmp_path / "one.bin"
    one.write_bytes(b"\x03")
    assert message(one) == f"{one}, record 0 at byte offset 0: truncated: 1 bytes, a record is 2305 " \
                           "(1 label + 48x48 pixels)"
    bad = write_bin("bad.bin", [9], faces(1))
    assert message(bad) == f"{bad}, record 0 at byte offset 0: label byte 9 is not a label 0..6"
    assert message(bad, skip_bad=True) == f"{bad}: no valid records"
    (tmp_path / "dir.bin").mkdir()
    with pytest.raises(DataError, match=r"dir\.bin: cannot read: Is a directory$"):
        load_binary(tmp_path / "dir.bin", Problems(False))
    split = load_dataset(write_bin("val.bin", [1, 6], faces(2))).split("val")
    assert split.labels.dtype == np.int64 and split.labels.tolist() == [1, 6] and split.images.shape == (2, 48, 48)


def test_folder_messages(tmp_path, write_image, faces):
    root = tmp_path / "fer"
    write_image(root / "val" / "happy" / "a.png", faces(1)[0])
    write_image(root / "validation" / "sad" / "b.png", faces(1)[0])
    with pytest.raises(DataError) as info:
        load_dataset(root)
    assert str(info.value) in (f"{root / 'validation'}: a second folder for split 'val'",
                               f"{root / 'val'}: a second folder for split 'val'")
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"f\.png: not a folder$"):
        load_folders(tmp_path / "f.png", Problems(False))
    assert not looks_like_folders(tmp_path / "f.png")
    odd = tmp_path / "odd"
    write_image(odd / "grumpy" / "a.png", faces(1)[0])
    write_image(odd / "happy" / "a.png", faces(1)[0])
    assert message(odd) == (f"{odd / 'grumpy'}: unknown class folder; expected one of angry, disgust, fear, happy, "
                            "sad, surprise, neutral (or a synonym such as happiness, surprised)")
    empty = tmp_path / "empty"
    (empty / "happy").mkdir(parents=True)
    assert message(empty) == f"{empty}: empty split: no face images in its class folders"
    broken = tmp_path / "broken"
    (broken / "happy").mkdir(parents=True)
    (broken / "happy" / "a.png").write_bytes(b"not a png")
    assert message(broken) == f"{broken / 'happy' / 'a.png'}: not a decodable image"
    assert message(broken, skip_bad=True) == f"{broken}: empty split: no readable face images"


def test_dataset_names_the_splits_it_has():
    split = Split(np.zeros((1, 48, 48), np.uint8), np.array([2]))
    ds = Dataset("fer.csv", "csv", {"train": split, "test": split})
    assert ds.split("train") is split
    with pytest.raises(DataError) as info:
        ds.split("val")
    assert str(info.value) == "fer.csv: no 'val' split (this dataset has: train, test)"
    with pytest.raises(DataError, match=r"^x: no 'val' split \(this dataset has: none\)$"):
        Dataset("x", "csv", {}).split("val")


def test_csv_messages(tmp_path, write_csv, faces):
    face = faces(1)[0]
    (tmp_path / "empty.csv").write_text("")
    assert message(tmp_path / "empty.csv") == (f"{tmp_path / 'empty.csv'}, line 1: header [] has no 'pixels' column "
                                               "(expected emotion,pixels,Usage)")
    text = write_csv("text.csv", "emotion,pixels", [[1, "1 2 x"]])
    assert message(text) == f"{text}, line 2: pixels contain a non-numeric value"
    big = write_csv("big.csv", "emotion,pixels", [[1, " ".join(["300"] * 2304)]])
    assert message(big) == f"{big}, line 2: pixel value outside 0..255"
    (tmp_path / "latin1.csv").write_bytes(b"emoti\xf6n,pixels\n")
    assert message(tmp_path / "latin1.csv") == (f"{tmp_path / 'latin1.csv'}, line 1: header is not UTF-8 text "
                                                "(expected emotion,pixels,Usage)")
    (tmp_path / "huge.csv").write_text("emotion,pixels\n1,\"" + "1 " * 100_000 + "\"\n")
    assert message(tmp_path / "huge.csv").startswith(f"{tmp_path / 'huge.csv'}, line 2: not valid CSV: field larger")
    gaps = write_csv("gaps.csv", "emotion,pixels", [[1, face], [], [2, face]])
    assert load_dataset(gaps).split("train").labels.tolist() == [1, 2]
    (tmp_path / "gone").mkdir()
    with pytest.raises(DataError, match=r"gone\.csv: cannot open: No such file or directory$"):
        load_dataset(tmp_path / "gone.csv", "csv")


# --- image headers: sizes read before decoding (issue 24, N55) ---


def _png_header(width: int, height: int, body: bytes = b"", end: bool = True) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + body
            + (chunk(b"IEND", b"") if end else b""))


@pytest.mark.parametrize("ext, params", [(".png", []), (".jpg", []), (".bmp", []),
                                         (".jpg", [1, 1])])  # cv2.IMWRITE_JPEG_PROGRESSIVE: SOF2
def test_image_size_reads_width_and_height_from_the_header(ext, params):
    import cv2

    from train.data.image_header import image_size, truncated

    ok, data = cv2.imencode(ext, np.zeros((37, 53), np.uint8), [2, 90, *params] if ext == ".jpg" else [])
    kind, width, height = image_size(data.tobytes())
    assert (kind, width, height) == ({".png": "PNG", ".jpg": "JPEG", ".bmp": "BMP"}[ext], 53, 37)
    assert not truncated(kind, data.tobytes()) and not truncated(kind, data.tobytes() + b"\0\0")
    assert truncated(kind, data.tobytes()[:-1]) == (ext != ".bmp")


def test_image_size_refuses_what_is_not_png_jpeg_or_bmp():
    from train.data.image_header import ImageHeaderError, image_size

    for data in (b"", b"GIF89a....", b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", b"\xff\xd8\xff\xe0\0\x10JFIF\0", b"BM"):
        with pytest.raises(ImageHeaderError):
            image_size(data)
    # fill bytes before a marker are skipped on the way to the frame header
    jpeg = b"\xff\xd8" + b"\xff\xff\xff\xc0\x00\x11\x08\x00\x20\x00\x30\x01\x01\x11\x00" + b"\xff\xd9"
    assert image_size(jpeg) == ("JPEG", 48, 32)
    # a BMP stored top-down has a negative height
    bmp = b"BM" + bytes(16) + (12).to_bytes(4, "little", signed=True) + (-9).to_bytes(4, "little", signed=True)
    assert image_size(bmp) == ("BMP", 12, 9)


def test_a_face_file_is_refused_from_its_header_above_25_megapixels(tmp_path):
    from train.data.image_header import MAX_PIXELS, read_face_image

    assert MAX_PIXELS == 25_000_000
    at_limit, over = tmp_path / "at.png", tmp_path / "over.png"
    at_limit.write_bytes(_png_header(5000, 5000))  # no pixel data: refused by the decoder, not by its size
    over.write_bytes(_png_header(5000, 5001))
    assert read_face_image(at_limit) == "not a decodable image"
    assert read_face_image(over) == ("PNG of 5000x5001 pixels: larger than 25 megapixels, not a face image "
                                     "(refused before decoding)")
    cut = tmp_path / "cut.png"
    cut.write_bytes(_png_header(48, 48, end=False))
    assert read_face_image(cut) == "truncated PNG: the file ends before the image does (an interrupted copy?)"
    assert read_face_image(tmp_path / "missing.png") == "cannot read: No such file or directory"


def test_a_16_bit_face_is_scaled_to_8_bits(tmp_path):
    import cv2

    from train.data.image_header import read_face_image

    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), np.full((4, 4), 65535, np.uint16))
    image = read_face_image(path)
    assert image.dtype == np.uint8 and (image == 255).all()


def test_a_symbolic_link_loop_is_named_or_skipped(tmp_path, write_image, faces):
    root = tmp_path / "fer"
    write_image(root / "train" / "happy" / "a.png", faces(1)[0])
    loop = root / "train" / "happy" / "b.png"
    loop.symlink_to("b.png")
    dangling = root / "train" / "happy" / "c.png"
    dangling.symlink_to("nowhere.png")
    (root / "train" / "happy" / "0-subfolder").mkdir()  # a folder among the faces is passed over
    write_image(root / "train" / "happy" / "d.png", faces(2)[1])
    class_loop = root / "train" / "sad"
    class_loop.symlink_to("sad")
    split_loop = root / "val"
    split_loop.symlink_to("val")
    err = _error(root)
    assert str(err) == f"{split_loop}: a symbolic link that loops back on itself: neither a file nor a folder"
    ds = load_dataset(root, skip_bad=True)
    assert [str(e) for e in ds.skipped] == [
        f"{split_loop}: a symbolic link that loops back on itself: neither a file nor a folder",
        f"{class_loop}: a symbolic link that loops back on itself: neither a file nor a folder",
        f"{loop}: a symbolic link that loops back on itself: neither a file nor a folder",
        f"{dangling}: cannot read: No such file or directory"]
    assert list(ds.splits) == ["train"] and len(ds.splits["train"]) == 2
    assert looks_like_folders(root)


def _jpeg(*segments: bytes) -> bytes:
    return b"\xff\xd8" + b"".join(segments)


def _sof(width: int, height: int) -> bytes:
    return b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big")


@pytest.mark.parametrize("data, size", [
    (_png_header(2**31, 1)[:24], ("PNG", 2**31, 1)),  # exactly the signature and IHDR's two sizes; unsigned
    (_jpeg(_sof(40000, 100)), ("JPEG", 40000, 100)),  # the frame header ends the data; sizes unsigned
    (_jpeg(b"\xff\xe1" + (40000).to_bytes(2, "big") + bytes(39998), _sof(64, 32)), ("JPEG", 64, 32)),  # long APP1
    (_jpeg(b"\xff", _sof(48, 32)), ("JPEG", 48, 32)),  # one fill byte before the marker
])
def test_image_size_edge_cases(data, size):
    from train.data.image_header import image_size

    assert image_size(data) == size


@pytest.mark.parametrize("data, problem", [
    (_jpeg(b"\xff\xe0\x00\x10"), "JPEG without a frame header"),  # APP0's length runs past the end
    (_jpeg(b"\xff\xe0\x00\x02"), "JPEG without a frame header"),  # an empty APP0 ends the data
    (_jpeg(b"\x00\x00\x00\x00", _sof(48, 48)), "JPEG without a frame header"),  # no marker where one must be
    (_jpeg(b"\xff\xc0\x00\x11\x08\x00\x30\x00"), "truncated or malformed image header"),  # frame header cut short
    (b"GIF89a\x01\x00\x01\x00", "not a PNG, JPEG or BMP image"),
])
def test_image_size_names_what_it_cannot_read(data, problem):
    from train.data.image_header import ImageHeaderError, image_size

    with pytest.raises(ImageHeaderError) as err:
        image_size(data)
    assert str(err.value) == problem


def test_only_zero_padding_after_the_end_marker_counts_as_whole():
    from train.data.image_header import truncated

    whole = _jpeg(_sof(48, 48)) + b"\xff\xd9"
    assert not truncated("JPEG", whole + b"\0\0\0")
    assert truncated("JPEG", whole + b"X") and truncated("JPEG", whole[:-1])
    assert truncated("PNG", _png_header(4, 4, end=False)) and not truncated("BMP", b"BM")
