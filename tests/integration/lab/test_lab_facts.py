"""The product's version facts against the lab's own tables: where they disagree, one of them is wrong.

The lab's tables (fortiauto_lab/facts.py) are written from Fortinet's published schema and the
reference samples, not from the product; this test is the tripwire that catches a product fact
copied wrong. It compares every release both claim to know.
"""

from __future__ import annotations

import pytest

from fortiauto.fortios import version as product_version
from fortiauto.fortios.version import SUPPORTED_FAMILIES, FortiOSVersion
from fortiauto_lab.hardware import MODELS
from fortiauto_lab.release import FAMILIES, Release

# Releases on the edges of the facts (first/last builds where a field appears or changes name).
_EDGES = ["6.4.0", "6.4.1", "6.4.2", "6.4.14", "7.0.0", "7.0.1", "7.0.2", "7.0.15", "7.2.0", "7.2.10"]
_EDGES += ["7.4.0", "7.4.4", "7.4.5", "7.4.8", "7.6.0", "7.6.3", "7.6.4", "7.6.5"]
RELEASES = [r for r in _EDGES if r.rsplit(".", 1)[0] in set(SUPPORTED_FAMILIES) & set(FAMILIES)]


def _lab_facts(release: Release) -> dict[str, object]:
    return {
        "emailfilter_log_field": "log" if release.has("emailfilter.log-field-is-log") else "log-all",
        "has_feature_set": release.has("emailfilter.feature-set"),
        "has_other_webmails": release.has("emailfilter.other-webmails"),
        "server_cert_is_list": release.has("ssl.server-cert-list"),
        "accepts_url_token": not release.has("auth.url-token-opt-in"),
        "vip_has_status": release.has("vip.status"),
        "dlp_field": "dlp-profile" if release.has("policy.dlp-profile") else "dlp-sensor",
    }


@pytest.mark.parametrize("text", RELEASES)
def test_product_and_lab_agree_on_version_facts(text):
    product = FortiOSVersion.parse(text)
    lab = _lab_facts(Release.parse(text))
    disagree = {
        name: (getattr(product, name), ours) for name, ours in lab.items() if getattr(product, name) != ours
    }
    assert disagree == {}, f"FortiOS {text}: product vs lab facts differ: {disagree}"


@pytest.mark.parametrize("model", list(MODELS.values()), ids=lambda m: m.name)
def test_product_and_lab_agree_on_the_ram_class(model):
    small_ram_model = getattr(product_version, "small_ram_model", None)
    if small_ram_model is None:
        pytest.skip("the product does not classify models yet")
    for name in (model.code, model.name):
        assert small_ram_model(name) is model.small_ram, name
