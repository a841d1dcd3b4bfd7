"""What the engine refuses: unusable input, failed writes, bad output names and bad template parameters."""
from __future__ import annotations

import io

import pytest

from localcloud.ice.engine import EngineError, ParamError, SnapshotParams, run, validate_output
from localcloud.media import make_audio_only, make_garbage, make_test_video
from tests.localcloud.engine.support import cut


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: b"", "InvalidInput.NotDecodable"),
        (lambda: make_garbage(), "InvalidInput.NotDecodable"),
        (lambda: make_test_video(duration_s=1)[:3000], "InvalidInput.Truncated"),  # cut before the moov at the end
        (lambda: make_audio_only(), "InvalidInput.NoVideoStream"),
    ],
    ids=["empty", "garbage", "truncated", "audio-only"],
)
def test_unusable_input_fails_with_a_code(make, code):
    with pytest.raises(EngineError) as err:
        cut(make(), {"Type": "Normal"}, "x.jpg")
    assert err.value.code == code and err.value.message


def test_write_failure_fails_the_job(clip):
    def failing(key, data, content_type):
        raise OSError("disk full")

    with pytest.raises(EngineError) as err:
        run(io.BytesIO(clip), SnapshotParams.from_config({"Type": "Normal"}), "x.jpg", failing)
    assert err.value.code == "Output.WriteFailed" and "x.jpg" in err.value.message and "disk full" in err.value.message


def test_run_refuses_bad_output_names(clip):
    with pytest.raises(EngineError) as err:
        cut(clip, {"Type": "Normal", "Count": 3}, "no-placeholder.jpg")
    assert err.value.code == "InvalidParameter.Output"



@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "TemplateConfig.Type"),
        ({"Type": "Cover"}, "TemplateConfig.Type"),
        ({"Type": "Normal", "FrameType": "INTRA"}, "TemplateConfig.FrameType"),
        ({"Type": "Normal", "Count": 0}, "TemplateConfig.Count"),
        ({"Type": "Normal", "Count": "5"}, "TemplateConfig.Count"),
        ({"Type": "Normal", "Count": True}, "TemplateConfig.Count"),
        ({"Type": "Normal", "Time": -1}, "TemplateConfig.Time"),
        ({"Type": "Normal", "Interval": 0}, "TemplateConfig.Interval"),
        ({"Type": "Normal", "Width": 4}, "TemplateConfig.Width"),
        ({"Type": "Normal", "Height": 5000}, "TemplateConfig.Height"),
        ({"Type": "Normal", "BlackLevel": 101}, "TemplateConfig.BlackLevel"),
        ({"Type": "Normal", "PixelBlackThreshold": 256}, "TemplateConfig.PixelBlackThreshold"),
        ({"Type": "WebVtt", "IsSptFrag": "true"}, "TemplateConfig.IsSptFrag"),
        ({"Type": "Normal", "Intervall": 3}, "TemplateConfig.Intervall"),
        ({"Type": "Sprite"}, "TemplateConfig.SpriteSnapshotConfig"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 3}}, "TemplateConfig.SpriteSnapshotConfig.Lines"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 0, "Lines": 1}},
         "TemplateConfig.SpriteSnapshotConfig.Columns"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 1, "Lines": 1, "Color": "red"}},
         "TemplateConfig.SpriteSnapshotConfig.Color"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 1, "Lines": 1, "Padding": -1}},
         "TemplateConfig.SpriteSnapshotConfig.Padding"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": []}, "TemplateConfig.SpriteSnapshotConfig"),
    ],
)
def test_param_errors_name_the_field(config, field):
    with pytest.raises(ParamError) as err:
        SnapshotParams.from_config(config)
    assert err.value.field == field
    assert field in str(err.value)


def test_config_round_trip():
    config = {
        "Type": "Sprite", "FrameType": "normal", "Time": 1000, "Count": 8, "Interval": 2, "Width": 160,
        "BlackLevel": 30, "PixelBlackThreshold": 70,
        "SpriteSnapshotConfig": {"Columns": 4, "Lines": 2, "Padding": 2, "Margin": 0, "Color": "#000000"},
    }
    params = SnapshotParams.from_config(config)
    assert params.to_config() == config
    assert SnapshotParams.from_config(params.to_config()) == params
    defaults = {"Type": "Normal", "FrameType": "intra", "Time": 0}
    assert SnapshotParams.from_config({"Type": "Normal"}).to_config() == defaults


@pytest.mark.parametrize(
    ("config", "output", "ok"),
    [
        ({"Type": "Normal"}, "a.jpg", True),
        ({"Type": "Normal", "Count": 2}, "a.jpg", False),
        ({"Type": "Normal", "Count": 2}, "a-{Count}.jpg", True),
        ({"Type": "Normal", "Interval": 5}, "a.jpg", False),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, "s.jpg", False),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, "s-{TileCount}.jpg", True),
        ({"Type": "WebVtt"}, "a.jpg", False),
        ({"Type": "WebVtt"}, "a.vtt", True),
        ({"Type": "Normal"}, "dir/", False),
    ],
)
def test_validate_output(config, output, ok):
    params = SnapshotParams.from_config(config)
    if ok:
        validate_output(params, output)
    else:
        with pytest.raises(ParamError) as err:
            validate_output(params, output)
        assert err.value.field == "Output"

