"""Readers of dlib image-metadata XML and iBUG .pts landmark files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from e2far_lite.io.landmark_files import read_annotations, read_dlib_xml, read_pts
from e2far_lite.paths import shared_dir

DEV_XML = shared_dir() / "data" / "real_faces_dev" / "faces_with_landmarks.xml"


def _parts(points: np.ndarray) -> str:
    return "\n".join(f"      <part name='{i:02d}' x='{x:g}' y='{y:g}'/>"
                     for i, (x, y) in enumerate(points))


def _grid(offset: float = 0.0) -> np.ndarray:
    """68 distinct integer points (dlib stores integers)."""
    i = np.arange(68)
    return np.stack([10 + i % 10 * 3, 20 + i // 10 * 4], 1).astype(float) + offset


def write_xml(path, body: str) -> None:
    path.write_text("<?xml version='1.0' encoding='ISO-8859-1'?>\n<dataset>\n<name>t</name>\n"
                    f"<images>\n{body}\n</images>\n</dataset>\n")


def test_dlib_xml_faces_boxes_and_pixel_convention(tmp_path):
    xml = tmp_path / "faces.xml"
    write_xml(xml, f"""
  <image file='a.jpg'>
    <box top='15' left='8' width='40' height='42'>
{_parts(_grid())}
    </box>
    <box top='1' left='2' width='3' height='4'/>
    <box top='0' left='0' width='9' height='9' ignore='1'>
{_parts(_grid())}
    </box>
  </image>
  <image file='sub/b.png'>
    <box top='5' left='6' width='30' height='30'>
{_parts(_grid(5))}
    </box>
  </image>""")
    faces = read_dlib_xml(xml)
    assert len(faces) == 2  # the box without parts and the ignored one are skipped
    assert faces[0].image == tmp_path / "a.jpg"
    assert faces[1].image == tmp_path / "sub" / "b.png"
    assert faces[0].box == (8.0, 15.0, 40.0, 42.0)  # (x, y, w, h) = (left, top, width, height)
    # dlib's 0-based pixel centres -> corner origin: +0.5
    np.testing.assert_allclose(faces[0].landmarks, _grid() + 0.5)
    np.testing.assert_allclose(faces[1].landmarks, _grid(5) + 0.5)
    x, y, w, h = faces[0].landmark_box()
    assert (x, y, w, h) == (10.5, 20.5, 27.0, 24.0)


def test_dlib_xml_missing_parts_are_nan(tmp_path):
    xml = tmp_path / "faces.xml"
    write_xml(xml, f"<image file='a.jpg'><box top='1' left='2' width='3' height='4'>"
                   f"{_parts(_grid()[:60])}</box></image>")
    face = read_dlib_xml(xml)[0]
    assert np.isnan(face.landmarks[60:]).all() and np.isfinite(face.landmarks[:60]).all()


@pytest.mark.parametrize("body, message", [
    ("<image file='a.jpg'><box top='1' left='2' width='3'><part name='00' x='1' y='2'/></box>"
     "</image>", "attribute 'height'"),
    ("<image file='a.jpg'><box top='1' left='2' width='3' height='x'>"
     "<part name='00' x='1' y='2'/></box></image>", "expected a number for height="),
    ("<image file='a.jpg'><box top='1' left='2' width='3' height='4'>"
     "<part name='68' x='1' y='2'/></box></image>", "part names '00'..'67'"),
    ("<image file='a.jpg'><box top='1' left='2' width='3' height='4'>"
     "<part name='03' x='1' y='2'/><part name='03' x='1' y='2'/></box></image>", "twice"),
    ("<image file='a.jpg'><box top='1' left='2' width='3' height='4'>"
     "<part name='03' y='2'/></box></image>", "attribute 'x'"),
    ("<image><box top='1' left='2' width='3' height='4'/></image>", "file= attribute"),
])
def test_dlib_xml_malformed_boxes(tmp_path, body, message):
    xml = tmp_path / "bad.xml"
    write_xml(xml, body)
    with pytest.raises(ValueError, match=message):
        read_dlib_xml(xml)


def test_dlib_xml_not_xml_or_not_dlib(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<dataset><images><image file='a.jpg'></images>")
    with pytest.raises(ValueError, match="broken.xml.*not well-formed XML"):
        read_dlib_xml(broken)
    other = tmp_path / "other.xml"
    other.write_text("<annotation><object/></annotation>")
    with pytest.raises(ValueError, match="other.xml.*dlib image-metadata XML.*<annotation>"):
        read_dlib_xml(other)
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        read_dlib_xml(tmp_path / "missing.xml")


def write_pts(path, points, count=None, brace=True) -> None:
    lines = ["version: 1", f"n_points:  {len(points) if count is None else count}", "{"]
    lines += [f"{x:.3f} {y:.3f}" for x, y in points]
    path.write_text("\n".join(lines + (["}"] if brace else [])) + "\n")


def test_pts_reads_one_based_centres(tmp_path):
    pts = tmp_path / "face.pts"
    write_pts(pts, _grid())
    np.testing.assert_allclose(read_pts(pts), _grid() - 0.5)  # 1-based centres -> corner origin
    np.testing.assert_allclose(read_pts(pts, one_based=False), _grid() + 0.5)


@pytest.mark.parametrize("text, message", [
    ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", "'}' after the points"),
    ("version: 1\nn_points: 2\n1 2\n3 4\n}\n", "header lines"),
    ("version: 1\n{\n1 2\n}\n", "n_points: N"),
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "expected 3 points \\(n_points\\), got 2"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 four\n}\n", "two finite numbers 'x y' per point, got "
     "'3 four'"),
    ("version: 1\nn_points: 2\n{\n1 2\nnan inf\n}\n", "two finite numbers 'x y' per point, got "
     "'nan inf'"),
    ("version: 1\nn_points: 2\n{\n1 2 5\n3 4\n}\n", "two finite numbers"),
    ("version: 1\nn_points: 2\n", "'\\{' before the points"),
])
def test_pts_malformed(tmp_path, text, message):
    pts = tmp_path / "bad.pts"
    pts.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_pts(pts)


def test_pts_binary_and_missing(tmp_path):
    binary = tmp_path / "bin.pts"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ValueError, match="bin.pts.*binary"):
        read_pts(binary)
    with pytest.raises(FileNotFoundError, match="nope.pts"):
        read_pts(tmp_path / "nope.pts")


def test_read_annotations_folder_of_pts_with_images(tmp_path):
    for stem in ("b", "a"):
        write_pts(tmp_path / f"{stem}.pts", _grid())
        Image.new("RGB", (64, 48)).save(tmp_path / f"{stem}.png")
    faces = read_annotations(tmp_path)
    assert [f.image.name for f in faces] == ["a.png", "b.png"]
    assert faces[0].box is None and faces[0].landmarks.shape == (68, 2)
    assert read_annotations(tmp_path / "a.pts")[0].image == tmp_path / "a.png"


def test_read_annotations_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_annotations(tmp_path / "nothing")
    with pytest.raises(ValueError, match="no|got none"):
        read_annotations(tmp_path)  # an empty folder
    write_pts(tmp_path / "lonely.pts", _grid())
    with pytest.raises(FileNotFoundError, match="lonely.pts.*image beside it"):
        read_annotations(tmp_path)
    short = tmp_path / "five" / "five.pts"
    short.parent.mkdir()
    write_pts(short, _grid()[:5])
    with pytest.raises(ValueError, match="expected 68 points, got 5"):
        read_annotations(short)
    with pytest.raises(ValueError, match="a .xml or .pts file or a folder"):
        (tmp_path / "x.txt").write_text("hi")
        read_annotations(tmp_path / "x.txt")


def test_read_annotations_folder_with_xml(tmp_path):
    write_xml(tmp_path / "faces.xml", f"<image file='a.jpg'><box top='1' left='2' width='3' "
                                      f"height='4'>{_parts(_grid())}</box></image>")
    assert len(read_annotations(tmp_path)) == 1


@pytest.mark.skipif(not DEV_XML.is_file(), reason="the shared dev set is not here")
def test_the_shared_dev_set_parses():
    faces = read_dlib_xml(DEV_XML)
    assert len(faces) == 18
    assert all(np.isfinite(f.landmarks).all() and f.image.is_file() for f in faces)


def test_dev_annotations_come_from_the_environment(tmp_path, monkeypatch):
    from e2far_lite.io.landmark_files import DEV_FACES_ENV, dev_annotations

    monkeypatch.delenv(DEV_FACES_ENV, raising=False)
    assert dev_annotations() is None
    monkeypatch.setenv(DEV_FACES_ENV, "  ")
    assert dev_annotations() is None
    monkeypatch.setenv(DEV_FACES_ENV, str(tmp_path / "faces.xml"))
    with pytest.raises(FileNotFoundError, match=r"E2FAR_DEV_FACES: expected a dlib .xml file.*"
                                                r"faces.xml', which does not exist"):
        dev_annotations()
    (tmp_path / "faces.xml").write_text("<dataset><images/></dataset>")
    assert dev_annotations() == tmp_path / "faces.xml"
