"""Expiry warnings in the plan: the bound certificate is about to expire and the site still names it
(the renewal did not happen), or the site's new certificate is itself short-lived. Runtime: about 2 s.
"""

from __future__ import annotations

from tests.integration.day2.daykit import derived_name, renewed_certificate, site_copy
from tests.integration.engine.labkit import apply


async def _plan_warnings(site, tmp_path) -> list[str]:
    planned = await apply(site, tmp_path / "j", check=True, probe=False, command="plan")
    plan = planned.devices[0].plan
    assert plan is not None
    return list(plan.warnings)


async def test_bound_certificate_close_to_expiry_and_not_renewed(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    short = renewed_certificate(lab.site.parent, "mx1-short", days=10)
    site = site_copy(lab.site, "short", mail_server={"certificate": short})
    run = await apply(site, tmp_path / "j")
    assert run.devices[0].status == "changed", run.devices[0].reason

    warnings = await _plan_warnings(site, tmp_path)
    name = derived_name(lab.site.parent, short["cert"])
    assert any(
        w.startswith(f"mx1: the bound certificate {name} expires in 9 day(s)")
        and "the renewal has not happened yet" in w
        for w in warnings
    ), warnings


async def test_site_certificate_close_to_expiry(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    short = renewed_certificate(lab.site.parent, "mx1-short-new", days=15)
    warnings = await _plan_warnings(
        site_copy(lab.site, "short-new", mail_server={"certificate": short}), tmp_path
    )
    assert any(
        w.startswith("mx1: the site's certificate mx1-short-new.pem expires in 14 day(s)") for w in warnings
    )


async def test_no_expiry_warning_for_a_long_lived_certificate(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    assert not [w for w in await _plan_warnings(lab.site, tmp_path) if "expires" in w]
