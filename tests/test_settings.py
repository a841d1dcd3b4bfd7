import pytest

from snapshot_pipeline.settings import Settings, SettingsError


def test_defaults_from_region_only():
    s = Settings.from_env({"REGION": "cn-shanghai"})
    assert s.ice_endpoint == "ice.cn-shanghai.aliyuncs.com"
    assert s.oss_endpoint == "https://oss-cn-shanghai-internal.aliyuncs.com"
    assert s.output_prefix == "snapshots/"
    assert s.snapshot_type == "Normal"
    assert ".mp4" in s.video_suffixes and ".mov" in s.video_suffixes


def test_every_problem_is_named_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"ICE_PROTOCOL": "ftp", "SNAPSHOT_TYPE": "Gif", "SNAPSHOT_OVERWRITE_PARAMS": "{",
                           "SNAPSHOT_URL_TIMEOUT": "200000", "CALLBACK_URL": "example.com/cb"})
    message = str(err.value)
    for name in ("REGION", "ICE_PROTOCOL", "SNAPSHOT_TYPE", "SNAPSHOT_OVERWRITE_PARAMS", "SNAPSHOT_URL_TIMEOUT",
                 "CALLBACK_URL"):
        assert name in message


def test_each_code_path_names_the_variables_it_requires():
    s = Settings.from_env({"REGION": "cn-shanghai"})
    with pytest.raises(SettingsError, match="CALLBACK_URL, ICE_CALLBACK_AUTH_KEY"):
        s.callback()
    with pytest.raises(SettingsError, match="SNAPSHOT_TEMPLATE_ID"):
        s.submission()
    with pytest.raises(SettingsError, match="OUTPUT_BUCKET, SNAPSHOT_TEMPLATE_ID"):
        s.reconciliation()


def test_typed_views_carry_the_required_values():
    s = Settings.from_env({"REGION": "cn-shanghai", "SNAPSHOT_TEMPLATE_ID": "tpl-1", "OUTPUT_BUCKET": "out",
                           "CALLBACK_URL": "https://cb.example.com/", "ICE_CALLBACK_AUTH_KEY": "Key1",
                           "ICE_CALLBACK_AUTH_KEY_PREVIOUS": "Key0"})
    assert [(p.name, p.template_id) for p in s.submission().profiles] == [("default", "tpl-1")]
    assert s.callback().auth_keys == ("Key1", "Key0")
    assert s.reconciliation().output_bucket == "out"
    assert "Key1" not in repr(s.callback())


def test_secret_not_in_repr():
    s = Settings.from_env({"REGION": "cn-shanghai", "ICE_CALLBACK_AUTH_KEY": "Sup3rSecretKey"})
    assert "Sup3rSecretKey" not in repr(s)


def test_prefix_gets_trailing_slash_and_suffixes_normalised():
    s = Settings.from_env({"REGION": "cn-shanghai", "OUTPUT_PREFIX": "thumbs", "VIDEO_SUFFIXES": "MP4, .Mov"})
    assert s.output_prefix == "thumbs/"
    assert s.video_suffixes == (".mp4", ".mov")
