"""The FortiManager path's pure pieces: FortiManager errors in FortiOS terms, pre-flight for routed units.

``fortios_kin`` decides how the applier, the undo and the outcome table read a FortiManager
failure (a refused write did not happen; a lost answer is re-read, never resent). Pre-flight
never refuses a routed unit for being managed, never lets a direct client write to it, and
says why FortiManager may not change it now.
"""

from __future__ import annotations

import pytest

from fortiauto import errors
from fortiauto.fortimanager.connect import route_for
from fortiauto.fortimanager.device_api import RoutedCounts, _as_fortios, fortios_kin, redacted_preview
from fortiauto.preflight import MANAGED_PATHS, Preflight, RouteReadiness
from fortiauto.site.models import DeviceFortiManager, FortiManagerSpec
from tests.unit.fakes import make_device

WHERE = {"method": "add", "url": "/pm/config/adom/root/obj/firewall/ssl-ssh-profile", "fortimanager": "fmg"}


@pytest.mark.parametrize(
    ("raised", "write", "kin"),
    [
        (errors.FortiManagerNotFound("gone", code=-3, **WHERE), False, errors.NotFound),
        (errors.FortiManagerAlreadyExists("dup", code=-2, **WHERE), True, errors.AlreadyExists),
        (errors.FortiManagerInvalidData("bad", code=-10, **WHERE), True, errors.InvalidValue),
        (errors.FortiManagerNoPermission("no", code=-10147, **WHERE), True, errors.APIError),
        (errors.FortiManagerNoPermission("no", code=-11, **WHERE), False, errors.AuthError),
        (errors.FortiManagerAPIError("odd", code=-9, **WHERE), True, errors.APIError),
        (errors.FortiManagerAuthError("refused", **WHERE), False, errors.AuthError),
        (errors.FortiManagerTransportError("down", **WHERE), False, errors.TransportError),
    ],
)
def test_fortimanager_errors_take_the_meaning_of_their_fortios_kin(
    raised: errors.FortiManagerError, write: bool, kin: type[errors.FortiautoError]
) -> None:
    mapped = fortios_kin(raised, write=write)
    assert type(mapped) is kin
    assert str(raised) in str(mapped)  # FortiManager's own words and where they came from
    if isinstance(mapped, errors.APIError) and isinstance(raised, errors.FortiManagerAPIError):
        assert mapped.error_code == raised.code


def test_a_refused_write_is_an_api_error_and_a_lost_answer_is_response_lost() -> None:
    refused = fortios_kin(errors.FortiManagerNoPermission("no write", code=-10147, **WHERE), write=True)
    assert isinstance(refused, errors.APIError)  # the applier marks it refused: the undo leaves it alone
    lost = fortios_kin(errors.FortiManagerTransportError("lost", in_flight=True, **WHERE), write=True)
    assert isinstance(lost, errors.ResponseLost)
    assert lost.in_flight is True
    dropped = fortios_kin(errors.FortiManagerTransportError("dropped", in_flight=False, **WHERE), write=True)
    assert isinstance(dropped, errors.ResponseLost)
    assert dropped.in_flight is False


def test_the_seam_keeps_the_fortimanager_error_as_cause_and_lets_lock_and_install_errors_through() -> None:
    original = errors.FortiManagerNotFound("gone", code=-3, **WHERE)
    with pytest.raises(errors.NotFound) as caught, _as_fortios(write=False):
        raise original
    assert caught.value.__cause__ is original
    for own in (
        errors.WorkspaceLocked("locked by jdoe", holder="jdoe"),
        errors.InstallFailed("half-way", task_id=7),
        errors.TaskTimeout("stuck", task_id=8),
    ):
        with pytest.raises(type(own)) as kept, _as_fortios(write=True):
            raise own
        assert kept.value is own


def routed(package: str = "mail-edge", **entry: str):
    device = make_device()
    return device.model_copy(update={"fortimanager": DeviceFortiManager(package=package, **entry)})


SPEC = FortiManagerSpec(url="https://fmg.example.test", token="a" * 30, adom="edge")


def test_route_for_fills_the_device_name_and_vdom() -> None:
    route = route_for(routed(), SPEC)
    assert route.to_json() == {
        "url": "https://fmg.example.test",
        "adom": "edge",
        "device": "fgt-1",
        "package": "mail-edge",
        "vdom": "root",
    }
    named = route_for(routed(device="FGT-EDGE-1", vdom="mail"), SPEC)
    assert (named.device, named.vdom) == ("FGT-EDGE-1", "mail")
    assert "token" not in str(named.to_json())


def test_a_routed_unit_reached_directly_is_refused() -> None:
    facts = Preflight(fortimanager="192.0.2.40")
    why = facts.refusal(routed(), MANAGED_PATHS)
    assert why is not None
    assert "routed through FortiManager" in why
    assert "reaches it directly" in why


def test_a_routed_unit_is_not_refused_for_being_managed_nor_for_the_units_own_token_rights() -> None:
    read_only = {"name": "ro", "fwgrp": "read", "utmgrp": "read", "vpngrp": "read"}
    facts = Preflight(
        fortimanager="192.0.2.40",
        super_admin=False,
        profile=read_only,
        route=RouteReadiness("FortiManager https://fmg (ADOM edge, package mail-edge, device fgt-1/root)"),
    )
    assert facts.refusal(routed(), MANAGED_PATHS) is None
    assert not facts.may_refuse(routed())
    warnings = facts.warnings(routed())
    assert any(w.startswith("changed through FortiManager https://fmg") for w in warnings)
    # The same facts for a unit without the entry: refused, pointing at the fortimanager: block.
    direct = Preflight(fortimanager="192.0.2.40")
    why = direct.refusal(make_device(), MANAGED_PATHS)
    assert why is not None
    assert "fortimanager: block" in why
    assert "docs/fortimanager.md" in why


def test_a_routed_units_readiness_refusal_is_the_refusal() -> None:
    facts = Preflight(route=RouteReadiness("FortiManager x", refusal="fgt-1 is out of sync", notes=("n",)))
    assert facts.refusal(routed(), MANAGED_PATHS) == "fgt-1 is out of sync"
    assert facts.may_refuse(routed())
    assert "n" in facts.warnings(routed())


def test_routed_counts_keep_the_units_own_and_add_fortimanagers() -> None:
    counts = RoutedCounts(total=4, writes=0, fortimanager={"installs": 1, "writes": 9})
    assert counts.to_json() == {"total": 4, "writes": 0, "fortimanager": {"installs": 1, "writes": 9}}


def test_the_install_preview_keeps_no_secret() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    preview = (
        "config vpn certificate local\n"
        '    edit "fa-mx1"\n'
        f'        set private-key "{key}"\n'
        "        set password s3cr3t-passphrase\n"
        '        set certificate "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----"\n'
        "    next\n"
        "end\n"
        "config firewall ssl-ssh-profile\n"
        '    edit "protect-mx1"\n'
        '        set server-cert "fa-mx1"\n'
    )
    shown = redacted_preview(preview)
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in shown
    assert "s3cr3t-passphrase" not in shown
    assert "        set private-key ENC ********\n" in shown
    assert "        set password ENC ********\n" in shown
    assert "-----BEGIN CERTIFICATE-----\nMIIC" in shown  # the certificate is public
    assert 'set server-cert "fa-mx1"' in shown
