"""Every FER2013 form loads back exactly: pixels, labels in the Kaggle order, splits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.labels import LABELS
from train.data import UNLABELLED, detect_format, load_dataset
from train.data.dataset import Problems, Split, make_split
from train.data.folders import load_folders


def test_kaggle_csv_with_usage_fills_all_three_splits(write_csv, faces):
    imgs = faces(6)
    usage = ["Training", "PublicTest", "PrivateTest", "Training", "PrivateTest", "PublicTest"]
    labels = [3, 0, 6, 5, 1, 2]
    rows = [[lab, img, use] for lab, img, use in zip(labels, imgs, usage, strict=True)]
    path = write_csv("fer2013.csv", "emotion,pixels,Usage", rows)

    ds = load_dataset(path)

    assert ds.format == "csv" and ds.skipped == []
    assert sorted(ds.splits) == ["test", "train", "val"]
    for name, rows in {"train": [0, 3], "val": [1, 5], "test": [2, 4]}.items():
        split = ds.split(name)
        np.testing.assert_array_equal(split.images, imgs[rows])
        assert split.images.dtype == np.uint8
        assert split.labels.tolist() == [labels[i] for i in rows]
        assert split.sources == [f"fer2013.csv:{i + 2}" for i in rows]


def test_csv_header_case_and_column_order_do_not_matter(write_csv, faces):
    imgs = faces(2)
    rows = [["PublicTest", imgs[0], 4], ["PublicTest", imgs[1], 6]]
    path = write_csv("x.csv", "Usage,Pixels,Emotion", rows)
    split = load_dataset(path).split("val")
    np.testing.assert_array_equal(split.images, imgs)
    assert split.labels.tolist() == [4, 6]


def test_csv_with_a_byte_order_mark_and_crlf_lines_loads(tmp_path, faces):
    img = faces(1)[0]
    path = tmp_path / "excel.csv"
    pixels = " ".join(str(v) for v in img.reshape(-1))
    path.write_bytes(f"\ufeffemotion,pixels,Usage\r\n5,{pixels},PrivateTest\r\n".encode())
    test = load_dataset(path).split("test")
    np.testing.assert_array_equal(test.images[0], img)
    assert test.labels.tolist() == [5]


def test_emotion_pixels_csv_is_one_labelled_train_split(write_csv, faces):
    imgs = faces(3, seed=1)
    path = write_csv("train.csv", "emotion,pixels", [[2, imgs[0]], [0, imgs[1]], [6, imgs[2]]])
    ds = load_dataset(path)
    assert list(ds.splits) == ["train"]
    np.testing.assert_array_equal(ds.split("train").images, imgs)
    assert ds.split("train").labels.tolist() == [2, 0, 6]
    assert ds.split("train").labelled


def test_pixels_only_csv_is_an_unlabelled_test_split(write_csv, faces):
    imgs = faces(2, seed=2)
    path = write_csv("test.csv", "pixels", [[imgs[0]], [imgs[1]]])
    ds = load_dataset(path)
    test = ds.split("test")
    np.testing.assert_array_equal(test.images, imgs)
    assert test.labels.tolist() == [UNLABELLED, UNLABELLED]
    assert not test.labelled


@pytest.mark.parametrize(("name", "split"), [("fer2013.bin", "train"), ("fer_val.bin", "val"),
                                             ("fer_test.dat", "test")])
def test_binary_records_round_trip(write_bin, faces, name, split):
    imgs = faces(4, seed=3)
    labels = [6, 0, 3, 4]
    ds = load_dataset(write_bin(name, labels, imgs))
    assert ds.format == "binary" and list(ds.splits) == [split]
    np.testing.assert_array_equal(ds.split(split).images, imgs)
    assert ds.split(split).labels.tolist() == labels
    assert ds.split(split).sources == [f"{name}#{i}" for i in range(4)]


def test_folder_labels_follow_kaggle_order_not_folder_order(tmp_path, write_image, faces):
    # Alphabetical order of these names is anger, disgust, fear, happiness, neutral, sad, surprised:
    # neutral/sad/surprise would get 4/5/6 by folder order; Kaggle says 6/4/5.
    names = ["surprised", "neutral", "sad", "happiness", "fear", "disgust", "anger"]
    imgs = faces(len(names), seed=4)
    expected = {}
    for img, name in zip(imgs, names, strict=True):
        path = write_image(tmp_path / "fer" / "train" / name / f"{name}.png", img)
        expected[str(path)] = (img, {"anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sad": 4,
                                     "surprised": 5, "neutral": 6}[name])

    train = load_dataset(tmp_path / "fer").split("train")

    assert len(train) == len(names)
    for img, label, source in zip(train.images, train.labels, train.sources, strict=True):
        want_img, want_label = expected[source]
        np.testing.assert_array_equal(img, want_img)
        assert label == want_label, source
    assert train.class_counts() == dict.fromkeys(LABELS, 1)


def test_folder_split_synonyms_map_to_canonical_names(tmp_path, write_image, faces):
    imgs = faces(3, seed=5)
    write_image(tmp_path / "fer" / "Training" / "happy" / "a.png", imgs[0])
    write_image(tmp_path / "fer" / "PublicTest" / "angry" / "b.png", imgs[1])
    write_image(tmp_path / "fer" / "test" / "Fearful" / "c.bmp", imgs[2])
    ds = load_dataset(tmp_path / "fer")
    assert ds.format == "folders"
    assert {n: s.labels.tolist() for n, s in ds.splits.items()} == {"train": [3], "val": [0], "test": [2]}
    np.testing.assert_array_equal(ds.split("test").images[0], imgs[2])


@pytest.mark.parametrize(("root", "split"), [("val", "val"), ("my_faces", "train")])
def test_a_root_of_class_folders_is_one_split_named_by_the_root(tmp_path, write_image, faces, root, split):
    imgs = faces(2, seed=6)
    write_image(tmp_path / root / "sadness" / "a.png", imgs[0])
    write_image(tmp_path / root / "disgusted" / "b.png", imgs[1])
    ds = load_dataset(tmp_path / root)
    assert list(ds.splits) == [split]
    assert ds.split(split).labels.tolist() == [1, 4]  # disgusted before sadness by path; labels are Kaggle's
    np.testing.assert_array_equal(ds.split(split).images, imgs[[1, 0]])


def test_colour_and_odd_sized_images_go_through_the_shared_preprocessing(tmp_path, write_image):
    # 100 wide x 80 high BGR: blue left half, red right half. BGR->gray gives 29 and 76; a loader
    # that took the channels as RGB would give 76 and 29.
    bgr = np.zeros((80, 100, 3), np.uint8)
    bgr[:, :50] = (255, 0, 0)
    bgr[:, 50:] = (0, 0, 255)
    write_image(tmp_path / "fer" / "surprise" / "wide.png", bgr)
    bgra = np.dstack([np.full((30, 20, 3), 200, np.uint8), np.full((30, 20), 10, np.uint8)])
    write_image(tmp_path / "fer" / "surprise" / "x_alpha.png", bgra)
    small = np.arange(12 * 12, dtype=np.uint8).reshape(12, 12)
    write_image(tmp_path / "fer" / "surprise" / "y_small.png", small)
    jpeg = write_image(tmp_path / "fer" / "surprise" / "z_photo.JPG", np.full((64, 64), 90, np.uint8))

    train = load_dataset(tmp_path / "fer").split("train")

    assert train.images.shape == (4, 48, 48) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [5, 5, 5, 5]
    wide, alpha, grown, photo = train.images
    assert (wide[:, :22] == 29).all() and (wide[:, 26:] == 76).all()
    assert (alpha == 200).all()  # alpha is not mixed into the gray value
    np.testing.assert_array_equal(grown, cv2.resize(small, (48, 48), interpolation=cv2.INTER_LINEAR))
    decoded = cv2.imdecode(np.fromfile(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(photo, cv2.resize(decoded, (48, 48), interpolation=cv2.INTER_AREA))


def test_sixteen_bit_png_is_scaled_not_saturated(tmp_path, write_image):
    gray8 = np.tile(np.arange(0, 240, 5, dtype=np.uint8), (48, 1))
    write_image(tmp_path / "fer" / "happy" / "deep.png", gray8.astype(np.uint16) * 257)
    np.testing.assert_array_equal(load_dataset(tmp_path / "fer").split("train").images[0], gray8)


def test_folders_resize_to_the_asked_model_input(tmp_path, write_image, faces):
    write_image(tmp_path / "fer" / "neutral" / "a.png", faces(1)[0])
    ds = load_dataset(tmp_path / "fer", size=100)
    assert ds.split("train").images.shape == (1, 100, 100)


@pytest.mark.parametrize(("name", "fmt"), [("a.csv", "csv"), ("a.CSV", "csv"), ("a.bin", "binary"),
                                           ("a.dat", "binary")])
def test_format_is_detected_from_the_suffix(tmp_path, name, fmt):
    (tmp_path / name).write_text("x")
    assert detect_format(tmp_path / name) == fmt


def test_forced_format_overrides_the_suffix(write_bin, faces):
    path = write_bin("faces.raw", [1], faces(1))
    ds = load_dataset(path, "binary")
    assert ds.split("train").labels.tolist() == [1]


def test_skipping_goes_on_after_a_bad_file(tmp_path, write_image, faces):
    root = tmp_path / "fer"
    images = faces(3)
    write_image(root / "happy" / "b.png", images[0])
    (root / "happy" / "a.txt").write_text("notes")  # sorts first: not an image
    (root / "happy" / "c.png").write_bytes(b"broken")
    write_image(root / "happy" / "d.png", images[1])
    write_image(root / "sad" / "e.png", images[2])
    ds = load_dataset(root, skip_bad=True)
    np.testing.assert_array_equal(ds.split("train").images, images)
    assert ds.split("train").labels.tolist() == [3, 3, 4] and ds.split("train").labels.dtype == np.int64
    assert [e.problem for e in ds.skipped] == [
        "not an image file (expected ['.bmp', '.jpeg', '.jpg', '.png'])", "not a decodable image"]


def test_hidden_entries_are_ignored(tmp_path, write_image, faces):
    root = tmp_path / "fer"
    write_image(root / "happy" / "a.png", faces(1)[0])
    write_image(root / ".thumbnails" / "x.png", faces(1)[0])
    write_image(root / "happy" / ".x.png", faces(1)[0])
    (root / "README").write_text("a file beside the class folders is not a class")
    assert len(load_dataset(root).split("train")) == 1


def test_sixteen_bit_values_are_rounded_from_the_full_range(tmp_path, write_image):
    deep = np.tile(np.array([1000, 30000, 65535, 128], np.uint16), (48, 12))
    write_image(tmp_path / "fer" / "happy" / "deep.png", deep)
    image = load_dataset(tmp_path / "fer").split("train").images[0]
    assert image[0, :4].tolist() == [4, 117, 255, 0]


def test_the_cache_keeps_one_entry_per_input_size(tmp_path, write_image, faces):
    write_image(tmp_path / "fer" / "happy" / "a.png", faces(1)[0])
    assert load_dataset(tmp_path / "fer").split("train").images.shape == (1, 48, 48)
    assert load_dataset(tmp_path / "fer", size=64).split("train").images.shape == (1, 64, 64)
    assert load_folders(tmp_path / "fer", Problems(False))["train"].images.shape == (1, 48, 48)


def test_split_counts_and_labelled():
    split = Split(np.zeros((3, 48, 48), np.uint8), np.array([0, 0, 2]))
    assert split.class_counts() == {"angry": 2, "disgust": 0, "fear": 1, "happy": 0, "sad": 0, "surprise": 0,
                                    "neutral": 0}
    assert split.labelled and len(split) == 3
    assert not Split(np.zeros((1, 48, 48), np.uint8), np.array([-1])).labelled
    assert not Split(np.zeros((0, 48, 48), np.uint8), np.array([], np.int64)).labelled


def test_make_split_shapes_lists_into_arrays():
    split = make_split([np.ones((48, 48)), np.zeros((48, 48))], [[3], [5]], ["a", "b"])
    assert split.images.shape == (2, 48, 48) and split.images.dtype == np.uint8
    assert split.images[0, 0, 0] == 1 and split.labels.tolist() == [3, 5] and split.labels.dtype == np.int64
    assert split.sources == ["a", "b"]
    assert make_split(np.zeros((1, 16 * 16)), [1], size=16).images.shape == (1, 16, 16)
    assert make_split(np.zeros((1, 48, 48)), 4).sources == []
