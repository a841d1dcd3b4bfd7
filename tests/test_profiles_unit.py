"""Profiles without the cloud: the setting, its validation, which uploads a profile takes, the poster
time, the names each (version, profile) gets, and the index composed from results."""
from __future__ import annotations

import json

import pytest

from snapshot_pipeline import layout
from snapshot_pipeline.claims import job_name
from snapshot_pipeline.domain import SnapshotType, Upload
from snapshot_pipeline.index import compose_index, profile_result, source_doc, tombstone_index
from snapshot_pipeline.profiles import Profile, parse_profiles, poster_time_ms
from snapshot_pipeline.publish import Publisher
from snapshot_pipeline.settings import Settings, SettingsError
from tests.support import MemoryStore, assert_valid_index

BASE = {"REGION": "cn-shanghai", "OUTPUT_BUCKET": "out"}
THREE = [
    {"name": "poster", "type": "Normal", "template_id": "tpl-poster", "overrides": {"Count": 1}},
    {"name": "thumbs", "type": "Normal", "template_id": "tpl-thumbs", "overrides": {"Count": 10},
     "prefixes": ["uploads/"]},
    {"name": "storyboard", "type": "WebVtt", "template_id": "tpl-vtt", "suffixes": [".MP4"]},
]
UPLOAD = Upload("media", "uploads/a.mp4", "5B3C1A2E053D763E1B002CC607C5A0FE", 10, 1_800_000_000.0)


def test_the_single_template_settings_are_the_profile_default():
    settings = Settings.from_env(dict(BASE, SNAPSHOT_TEMPLATE_ID="tpl-1", SNAPSHOT_TYPE="Sprite",
                                      SNAPSHOT_OVERWRITE_PARAMS='{"Count": 4}'))
    (profile,) = settings.submission().profiles
    assert (profile.name, profile.type, profile.template_id, dict(profile.overrides)) == \
        ("default", SnapshotType.SPRITE, "tpl-1", {"Count": 4})
    assert profile.applies_to("anything/at/all.mov")


def test_snapshot_profiles_declares_every_profile():
    profiles = Settings.from_env(dict(BASE, SNAPSHOT_PROFILES=json.dumps(THREE))).submission().profiles
    assert [(p.name, p.type.value, p.template_id) for p in profiles] == [
        ("poster", "Normal", "tpl-poster"), ("thumbs", "Normal", "tpl-thumbs"), ("storyboard", "WebVtt", "tpl-vtt")]
    assert [p.name for p in profiles if p.applies_to("uploads/clip.mp4")] == ["poster", "thumbs", "storyboard"]
    assert [p.name for p in profiles if p.applies_to("archive/clip.MP4")] == ["poster", "storyboard"]
    assert [p.name for p in profiles if p.applies_to("uploads/clip.mov")] == ["poster", "thumbs"]


def test_a_profiles_file_in_the_code_folder_is_read_when_the_variable_is_unset(tmp_path):
    file = tmp_path / "profiles.json"
    file.write_text(json.dumps(THREE[:1]))
    settings = Settings.from_env(BASE, profiles_file=file)
    assert [p.name for p in settings.profiles] == ["poster"]
    assert Settings.from_env(BASE, profiles_file=tmp_path / "absent.json").profiles == ()


def test_validation_names_every_problem_at_once():
    bad = [
        {"name": "Poster!", "type": "Still", "template_id": "t"},
        {"name": "thumbs", "type": "Normal", "overrides": [1], "prefixes": "uploads/", "colour": "red"},
        {"name": "thumbs", "type": "Sprite", "template_id": "t", "template_config": {"Type": "Sprite"}},
        "not an object",
    ]
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(dict(BASE, SNAPSHOT_PROFILES=json.dumps(bad), SNAPSHOT_TEMPLATE_ID="tpl-1"))
    message = str(raised.value)
    for problem in ("profile 'Poster!': name must be", "type must be one of Normal, Sprite, WebVtt, not 'Still'",
                    "profile 'thumbs': unknown field 'colour'", "template_id is missing",
                    "overrides must be a JSON object", "prefixes must be a list of non-empty strings",
                    "gives both template_id and template_config", "profile 3 is not a JSON object",
                    "profile name 'thumbs' is used twice",
                    "SNAPSHOT_TEMPLATE_ID must not be set with SNAPSHOT_PROFILES"):
        assert problem in message, (problem, message)


@pytest.mark.parametrize("raw, problem", [("[]", "non-empty JSON list"), ("{", "is not valid JSON"),
                                          ('{"name": "x"}', "non-empty JSON list")])
def test_a_setting_that_is_not_a_list_of_profiles_is_refused(raw, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env(dict(BASE, SNAPSHOT_PROFILES=raw))


def test_template_config_stands_in_for_template_id_only_where_the_local_cloud_creates_it():
    raw = json.dumps([{"name": "poster", "type": "Normal", "template_config": {"Type": "Normal", "Count": 1}}])
    (profile,) = parse_profiles(raw, require_template_ids=False)
    assert profile.template_id is None and profile.template_config == {"Type": "Normal", "Count": 1}
    with pytest.raises(ValueError, match="template_id is missing"):
        parse_profiles(raw)


def test_the_poster_time_replaces_time_only_for_a_poster_profile():
    still = Profile("poster", SnapshotType.NORMAL, "t", {"Count": 1, "Time": 0})
    marked = Profile("cover", SnapshotType.NORMAL, "t", {"Count": 3}, poster=True)
    thumbs = Profile("thumbs", SnapshotType.NORMAL, "t", {"Count": 10, "Time": 0})
    assert still.overwrite_params(2500) == {"Type": "Normal", "Count": 1, "Time": 2500}
    assert marked.overwrite_params(2500)["Time"] == 2500
    assert thumbs.overwrite_params(2500) == {"Type": "Normal", "Count": 10, "Time": 0}
    assert still.overwrite_params(None) == {"Type": "Normal", "Count": 1, "Time": 0}


@pytest.mark.parametrize("value, expected", [("2.5", (2500, None)), ("0", (0, None)), ("12", (12000, None))])
def test_a_poster_time_is_seconds(value, expected):
    assert poster_time_ms({"poster-time": value}) == expected


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", ""])
def test_an_invalid_poster_time_is_reported_not_used(value):
    milliseconds, problem = poster_time_ms({"poster-time": value})
    assert milliseconds is None and problem and "x-oss-meta-poster-time" in problem
    assert poster_time_ms({}) == (None, None)


def test_each_profile_of_a_version_has_its_own_claim_job_name_and_folder():
    default, thumbs = UPLOAD, UPLOAD.for_profile("thumbs")
    assert default.id != thumbs.id and job_name(default) != job_name(thumbs)
    assert thumbs.same_version(default) and thumbs.version == default.version
    # the profile ``default`` keeps the names of the single-template pipeline (no resubmission on upgrade)
    assert "profile" not in default.to_doc() and Upload.from_doc(thumbs.to_doc()).profile == "thumbs"
    version = f"snapshots/media/uploads/a.mp4/{UPLOAD.version}/"
    assert layout.output_location("out", "snapshots/", "Normal", default).key == version + "{Count}.jpg"
    assert layout.output_location("out", "snapshots/", "Normal", thumbs).key == version + "thumbs/{Count}.jpg"
    assert layout.result_key("snapshots/", thumbs) == version + "_results/thumbs.json"
    assert layout.profile_of_output("snapshots/media/uploads/a.mp4/", version + "thumbs/{Count}.jpg") == "thumbs"
    assert layout.profile_of_output("snapshots/media/uploads/a.mp4/", version + "{Count}.jpg") == "default"


def _result(profile: str, job_id: str) -> dict:
    return {"schema": "snapshot-result/1", "source": source_doc(UPLOAD, 10), "profile": profile,
            "job": {"id": job_id, "status": "Success", "type": "Normal", "template_id": "t",
                    "created": "2026-12-01T00:00:00Z", "finished": "2026-12-01T00:00:01Z"},
            "snapshots": [], "generated_at": "2026-12-01T00:00:02Z"}


def test_the_index_lists_every_profiles_result_and_validates():
    index = assert_valid_index(compose_index(source_doc(UPLOAD, 10), {"thumbs": _result("thumbs", "j2"),
                                                                      "poster": _result("poster", "j1")}, now=0))
    assert index["schema"] == "snapshot-index/2" and list(index["profiles"]) == ["poster", "thumbs"]
    assert profile_result(index, "thumbs")["job"]["id"] == "j2" and profile_result(index, "storyboard") is None
    assert "schema" not in index["profiles"]["poster"] and "profile" not in index["source"]


def test_a_snapshot_index_1_reads_as_the_profile_default():
    legacy = {"schema": "snapshot-index/1", "source": UPLOAD.to_doc(), "job": {"id": "j0", "status": "Success"},
              "snapshots": [], "generated_at": "2026-01-01T00:00:00Z"}
    assert profile_result(legacy, "default") is legacy and profile_result(legacy, "thumbs") is None


def test_a_tombstone_shows_no_profile():
    tombstone = assert_valid_index(tombstone_index(UPLOAD.for_profile("thumbs"), deleted_at=0, now=0))
    assert tombstone["profiles"] == {} and tombstone["deleted"] and "profile" not in tombstone["source"]


def test_localcloud_up_checks_its_profiles_file_before_starting(tmp_path):
    from localcloud.__main__ import _profiles_file

    bad = tmp_path / "profiles.json"
    bad.write_text(json.dumps([{"name": "Bad", "type": "Still"}, {"name": "ok", "type": "Normal",
                                                                  "template_config": {"Type": "Normal"}}]))
    with pytest.raises(SystemExit, match=r"--profiles .*profiles\.json: has problems: profile 'Bad': name must be"
                                         r".*type must be one of"):
        _profiles_file(str(bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(THREE[1:]))
    assert json.loads(_profiles_file(str(good))) == THREE[1:]


class InterleavingStore(MemoryStore):
    """A MemoryStore whose ``before_index_put`` runs (once) just before the next index write lands, to
    put another writer's work in between."""

    def __init__(self) -> None:
        super().__init__()
        self.before_index_put = None

    def put_json(self, bucket: str, key: str, doc) -> None:
        if key.endswith("/" + layout.INDEX_FILE) and self.before_index_put is not None:
            meanwhile, self.before_index_put = self.before_index_put, None
            meanwhile()
        super().put_json(bucket, key, doc)


def test_a_writer_whose_stale_index_lands_last_composes_again_and_loses_no_result():
    # Writer A lists only its own result; writer B writes its result and its whole index before A's
    # index write lands. A's write would drop B's result; A's second listing sees it and composes again.
    settings = Settings.from_env(dict(BASE, SNAPSHOT_PROFILES=json.dumps(THREE)))
    store = InterleavingStore()
    writer = Publisher(settings, None, store)  # type: ignore[arg-type]  # composing asks ICE nothing
    poster, thumbs = UPLOAD.for_profile("poster"), UPLOAD.for_profile("thumbs")
    composer = writer.composer(UPLOAD.location)
    composer.write_result(poster, {"profile": "poster", "job": {"id": "job-poster"}})

    def writer_b() -> None:
        composer.write_result(thumbs, {"profile": "thumbs", "job": {"id": "job-thumbs"}})
        writer._compose(thumbs, None)

    store.before_index_put = writer_b
    writer._compose(poster, None)
    index = writer.stable_index(UPLOAD.location)[1]
    assert {name: shown["job"]["id"] for name, shown in index["profiles"].items()} == \
        {"poster": "job-poster", "thumbs": "job-thumbs"}
