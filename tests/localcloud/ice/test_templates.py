"""Custom snapshot templates in the local ICE through the real SDK: create, read, list, update, default, delete."""
from __future__ import annotations

import json

import pytest
from alibabacloud_ice20201109 import models as m

from tests.localcloud.ice.support import NORMAL, client_error, create_template


def test_template_crud_round_trips_through_the_sdk(client):
    created = client.create_custom_template(m.CreateCustomTemplateRequest(
        name="stills", type=2, subtype=1, template_config=json.dumps(NORMAL))).body
    assert created.custom_template.type == 2 and created.custom_template.template_name == "stills"
    template_id = created.custom_template.template_id
    sprite_id = create_template(client, {"Type": "Sprite", "Count": 4, "Interval": 1,
                                         "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, subtype=2,
                                name="sprites")

    got = client.get_custom_template(m.GetCustomTemplateRequest(template_id=template_id)).body
    assert got.custom_template.subtype == 1 and got.custom_template.subtype_name == "Normal"
    assert json.loads(got.custom_template.template_config) == NORMAL
    assert m.GetCustomTemplateResponseBody().from_map(got.to_map()).to_map() == got.to_map()

    listing = client.list_custom_templates(m.ListCustomTemplatesRequest(type="2")).body
    assert listing.total == 2 and [t.template_id for t in listing.custom_template_list] == [sprite_id, template_id]
    ascending = client.list_custom_templates(m.ListCustomTemplatesRequest(
        type="2", order_by="CreationTime:Asc", page_size=1, page_number=2)).body
    assert ascending.total == 2 and [t.template_id for t in ascending.custom_template_list] == [sprite_id]
    only_sprites = client.list_custom_templates(m.ListCustomTemplatesRequest(type="2", subtype="2")).body
    assert [t.template_id for t in only_sprites.custom_template_list] == [sprite_id]
    by_name = client.list_custom_templates(m.ListCustomTemplatesRequest(type="2", name="stills")).body
    assert [t.template_id for t in by_name.custom_template_list] == [template_id]

    updated = dict(NORMAL, Count=7)
    assert client.update_custom_template(m.UpdateCustomTemplateRequest(
        template_id=template_id, name="stills-7", template_config=json.dumps(updated))).body.success
    got = client.get_custom_template(m.GetCustomTemplateRequest(template_id=template_id)).body.custom_template
    assert got.template_name == "stills-7" and json.loads(got.template_config)["Count"] == 7

    error = client_error(client.get_custom_template, m.GetCustomTemplateRequest(type=2, subtype=1))
    assert (error.code, error.status_code) == ("ResourceNotFound", 404)
    assert client.set_default_custom_template(m.SetDefaultCustomTemplateRequest(template_id=template_id)).body.success
    default = client.get_custom_template(m.GetCustomTemplateRequest(type=2, subtype=1)).body.custom_template
    assert default.template_id == template_id and default.is_default is True

    assert client.delete_custom_template(m.DeleteCustomTemplateRequest(template_id=template_id)).body.success
    error = client_error(client.get_custom_template, m.GetCustomTemplateRequest(template_id=template_id))
    assert (error.code, error.status_code) == ("ResourceNotFound", 404) and '"Template"' in error.message


@pytest.mark.parametrize("request_args, code, field", [
    (dict(type=2, subtype=1, template_config=json.dumps(NORMAL)), "MissingParameter", '"Name"'),
    (dict(name="t", type=2, subtype=1), "MissingParameter", '"TemplateConfig"'),
    (dict(name="t", type=1, subtype=1, template_config=json.dumps(NORMAL)), "InvalidParameter", '"Type"'),
    (dict(name="t", type=2, subtype=9, template_config=json.dumps(NORMAL)), "InvalidParameter", '"Subtype"'),
    (dict(name="t", type=2, subtype=2, template_config=json.dumps(NORMAL)), "InvalidParameter",
     '"TemplateConfig.Type"'),
    (dict(name="t", type=2, subtype=1, template_config="{not json"), "InvalidParameter", '"TemplateConfig"'),
    (dict(name="t", type=2, subtype=1, template_config=json.dumps(dict(NORMAL, Count=-1))), "InvalidParameter",
     "Count"),
    (dict(name="t", type=2, subtype=1, template_config=json.dumps(dict(NORMAL, FrameType="fast"))),
     "InvalidParameter", "FrameType"),
])
def test_template_validation_names_the_field(client, request_args, code, field):
    error = client_error(client.create_custom_template, m.CreateCustomTemplateRequest(**request_args))
    assert (error.code, error.status_code) == (code, 400)
    assert field in error.message and error.request_id
    assert error.data["RequestId"] == error.request_id and error.data["HostId"]
    assert client.list_custom_templates(m.ListCustomTemplatesRequest(type="2")).body.total == 0


def test_template_listing_and_update_errors(client):
    error = client_error(client.list_custom_templates, m.ListCustomTemplatesRequest())
    assert (error.code, '"Type"' in error.message) == ("MissingParameter", True)
    error = client_error(client.list_custom_templates, m.ListCustomTemplatesRequest(type="2", page_size=101))
    assert error.code == "InvalidParameter" and '"PageSize"' in error.message
    template_id = create_template(client)
    error = client_error(client.update_custom_template, m.UpdateCustomTemplateRequest(
        template_id=template_id, template_config=json.dumps(
            {"Type": "Sprite", "Count": 2, "SpriteSnapshotConfig": {"Columns": 2, "Lines": 1}})))
    assert error.code == "InvalidParameter" and "TemplateConfig.Type" in error.message

