"""The animatic and the timeline, read back as an editor's tools would read them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import version_frames

av = pytest.importorskip("av", reason="the video extra is part of the test extra")
otio = pytest.importorskip("opentimelineio", reason="the timeline extra is part of the test extra")

SIZE = "320x180"
FPS = 12
DEFAULT = 2.0


def seconds(frames: list[dict]) -> float:
    return sum(frame["duration"] if frame.get("duration") is not None else DEFAULT for frame in frames)


def decoded(path: Path) -> tuple[int, tuple[int, int], float, str]:
    """Frames, size, duration (s) and pixel format of the MP4's video stream, by decoding it all."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, (stream.codec_context.width, stream.codec_context.height), \
            float(container.duration / av.time_base), stream.codec_context.pix_fmt


def test_animatic_holds_each_frame_for_its_duration(run, applied: Path, tmp_path: Path) -> None:
    target = tmp_path / "board.mp4"
    result = run("-C", applied, "export", "animatic", "-o", target, "--size", SIZE, "--fps", str(FPS))
    assert result.code == 0, result.err
    frames = version_frames(applied / "out/v0001")
    count, size, duration, pixels = decoded(target)
    assert size == (320, 180) and pixels == "yuv420p"
    expected = seconds(frames)
    assert abs(duration - expected) <= 1 / FPS
    assert count == sum(round((f.get("duration") or DEFAULT) * FPS) for f in frames)
    again = tmp_path / "again.mp4"
    assert run("-C", applied, "export", "animatic", "-o", again, "--size", SIZE, "--fps", str(FPS)).code == 0
    assert again.read_bytes() == target.read_bytes()  # the same version and options: the same bytes


def picture(path: Path, at: int):  # type: ignore[no-untyped-def]
    """The decoded video frame number `at`, as a Pillow image."""
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == at:
                return frame.to_image()
    raise AssertionError("too few frames")


def changed_box(a: Path, b: Path, at: int) -> tuple[int, int, int, int] | None:
    """Where two videos' frame `at` differ by more than encoding noise."""
    from PIL import ImageChops

    difference = ImageChops.difference(picture(a, at), picture(b, at)).convert("L")
    return difference.point(lambda value: 255 if value > 40 else 0).getbbox()


def test_captions_are_drawn_where_the_dialogue_is(run, applied: Path, tmp_path: Path) -> None:
    plain, captioned = tmp_path / "plain.mp4", tmp_path / "captioned.mp4"
    for target, extra in ((plain, ()), (captioned, ("--captions",))):
        assert run("-C", applied, "export", "animatic", "-o", target, "--size", SIZE, "--fps", str(FPS),
                   "--scenes", "morning", *extra).code == 0
    frames = [f for f in version_frames(applied / "out/v0001") if f["scene"] == "morning"]
    assert [bool(f.get("dialogue")) for f in frames] == [False, False, False, True]
    pour = sum(round((f.get("duration") or DEFAULT) * FPS) for f in frames[:3])  # its first video frame
    box = changed_box(plain, captioned, pour)
    assert box is not None and box[1] > 180 * 0.6  # the caption band, at the bottom only
    assert changed_box(plain, captioned, 0) is None  # morning/skyline has no dialogue: no caption


def test_titles_add_a_card_per_scene(run, applied: Path, tmp_path: Path) -> None:
    target = tmp_path / "titled.mp4"
    assert run("-C", applied, "export", "animatic", "-o", target, "--size", SIZE, "--fps", str(FPS),
               "--titles").code == 0
    _, _, duration, _ = decoded(target)
    assert abs(duration - (seconds(version_frames(applied / "out/v0001")) + 5 * 2.0)) <= 1 / FPS


def test_timeline_has_a_clip_per_frame_markers_and_real_media(run, applied: Path, tmp_path: Path) -> None:
    target = tmp_path / "edit" / "board.otio"
    result = run("-C", applied, "export", "timeline", "-o", target, "--rate", "24")
    assert result.code == 0, result.err
    timeline = otio.adapters.read_from_file(str(target))
    (track,) = timeline.tracks
    frames = version_frames(applied / "out/v0001")
    clips = list(track.find_clips())
    assert [clip.name for clip in clips] == [frame["address"] for frame in frames]
    for clip, frame in zip(clips, frames, strict=True):
        expected = frame["duration"] if frame.get("duration") is not None else DEFAULT
        assert clip.duration().to_seconds() == pytest.approx(expected)
        media = (target.parent / clip.media_reference.target_url).resolve()
        assert media.is_file() and media == (applied / "out/v0001" / frame["path"]).resolve()
        assert clip.metadata["storyboard"]["fingerprint"] == frame["fingerprint"]
    markers = [(clip.name, marker.name) for clip in clips for marker in clip.markers]
    assert markers == [("morning/skyline", "Before the City Wakes"),
                       ("roastery/door", "Where First Light Begins"), ("commute/alarm", "Morning Rush"),
                       ("first-sip/order", "First Sip"), ("packshot/hero", "Packshot")]
    assert timeline.duration().to_seconds() == pytest.approx(seconds(frames))


@pytest.mark.parametrize(("file_format", "name"), [("fcp7xml", "board.xml"), ("fcpxml", "board.fcpxml"),
                                                   ("edl", "board.edl"), ("otio", "board.otio")])
def test_each_adapter_round_trips(run, applied: Path, tmp_path: Path, file_format: str, name: str) -> None:
    target = tmp_path / name
    result = run("-C", applied, "export", "timeline", "-o", target, "--format", file_format, "--absolute")
    assert result.code == 0, result.err
    adapters = {"fcp7xml": "fcp_xml", "fcpxml": "fcpx_xml", "edl": "cmx_3600", "otio": "otio_json"}
    adapter = adapters[file_format]
    options = {"rate": 24} if file_format == "edl" else {}
    timeline = otio.adapters.read_from_file(str(target), adapter_name=adapter, **options)
    clips = list(timeline.find_clips())
    frames = version_frames(applied / "out/v0001")
    assert len(clips) == len(frames)
    assert [round(clip.duration().to_seconds(), 3) for clip in clips] == [
        round(f["duration"] if f.get("duration") is not None else DEFAULT, 3) for f in frames]


def test_without_the_extras_the_commands_say_what_to_install(applied: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "av.py").write_text("raise ImportError('blocked for the test')\n")
    (blocker / "opentimelineio.py").write_text("raise ImportError('blocked for the test')\n")
    env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"}
    for command, hint in ((["animatic", "-o", "a.mp4"], "pip install 'storyboard-iac[video]'"),
                          (["timeline", "-o", "a.otio"], "pip install 'storyboard-iac[timeline]'")):
        result = subprocess.run([sys.executable, "-m", "storyboard", "-C", str(applied), "export", *command],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == 1 and hint in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / command[-1]).exists()


def test_bad_options_are_clear_errors(run, applied: Path, tmp_path: Path) -> None:
    odd = run("-C", applied, "export", "animatic", "-o", tmp_path / "a.mp4", "--size", "321x180")
    assert odd.code == 1 and "even numbers" in odd.err
    scene = run("-C", applied, "export", "animatic", "-o", tmp_path / "a.mp4", "--scenes", "nope")
    assert scene.code == 1 and "--scenes nope: no such scene" in scene.err
    assert not (tmp_path / "a.mp4").exists()
