"""Configuration revisions: FortiOS's own safety net, saved with a comment, listed, and restored."""

from __future__ import annotations

REVISIONS = "/api/v2/monitor/system/config-revision"


def test_save_list_and_restore_a_revision(api):
    before = api.state()
    saved = api.post(f"{REVISIONS}/save", json={"comments": "fortiauto run 20261201T0930Z"})
    assert saved.status_code == 200, saved.text
    config_id = saved.json()["results"]["config_id"]
    listing = api.results(REVISIONS)
    (entry,) = listing["revisions"]
    assert entry == {
        "id": config_id,
        "time": entry["time"],
        "version_id": "1",
        "admin": "fortiauto-api",  # the token's API user
        "comment": "fortiauto run 20261201T0930Z",
    }
    assert listing["categories"]["1"]["major_version"] == 7
    assert api.results(f"{REVISIONS}/info", params={"config_id": config_id})["comment"].startswith(
        "fortiauto"
    )
    # A change, then FortiOS's own restore puts the saved configuration back byte for byte.
    assert api.put("/api/v2/cmdb/firewall/policy/1", json={"status": "disable"}).status_code == 200
    assert api.state() != before
    restored = api.post(
        "/api/v2/monitor/system/config/restore", json={"source": "revision", "config_id": config_id}
    )
    assert restored.status_code == 200, restored.text
    assert api.state() == before


def test_revisions_are_newest_first_and_can_be_renamed_and_deleted(api):
    ids = [
        api.post(f"{REVISIONS}/save", json={"comments": f"r{n}"}).json()["results"]["config_id"]
        for n in (1, 2)
    ]
    assert [r["id"] for r in api.results(REVISIONS)["revisions"]] == ids[::-1]
    renamed = api.post(f"{REVISIONS}/update-comments", json={"config_id": ids[0], "comments": "kept"})
    assert renamed.status_code == 200
    assert api.post(f"{REVISIONS}/delete", json={"config_ids": [ids[1]]}).json()["results"]["deleted"] == 1
    assert [(r["id"], r["comment"]) for r in api.results(REVISIONS)["revisions"]] == [(ids[0], "kept")]
    missing = api.post("/api/v2/monitor/system/config/restore", json={"source": "revision", "config_id": 999})
    assert missing.status_code == 404


def test_a_reset_forgets_revisions(api):
    api.post(f"{REVISIONS}/save", json={"comments": "x"})
    api.reset()
    assert api.results(REVISIONS)["revisions"] == []


def test_saving_a_revision_is_not_a_configuration_write(api):
    before = api.get("/__lab__/requests").json()["writes"]
    assert api.post(f"{REVISIONS}/save", json={"comments": "before the run"}).status_code == 200
    assert api.get("/__lab__/requests").json()["writes"] == before
    # Nor is it hit by a write fault meant for the configuration.
    api.faults("http500-on-write=1")
    assert api.post(f"{REVISIONS}/save", json={"comments": "again"}).status_code == 200
    assert api.put("/api/v2/cmdb/firewall/policy/1", json={"comments": "x"}).status_code == 500
