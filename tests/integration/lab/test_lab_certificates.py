"""Certificates as a real unit serves them: CA import, the chain in replace mode, list-form server-cert."""

from __future__ import annotations

import base64
import socket
import ssl

import pytest
from cryptography import x509

from fortiauto_lab.pki import CertKey, issue_cert, make_ca

LOCAL_IMPORT = "/api/v2/monitor/vpn-certificate/local/import"
CA_IMPORT = "/api/v2/monitor/vpn-certificate/ca/import"
SSL = "/api/v2/cmdb/firewall/ssl-ssh-profile"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _lab_ca(api) -> CertKey:
    state = api.lab.state_dir
    return CertKey((state / "ca.pem").read_text(), (state / "ca.key").read_text())


def _import_leaf(api, name: str, pair: CertKey) -> None:
    body = {"type": "regular", "certname": name, "file_content": _b64(pair.cert_pem)}
    body["key_file_content"] = _b64(pair.key_pem)
    answer = api.post(LOCAL_IMPORT, json=body)
    assert answer.status_code == 200, answer.text


def _protect(api, certs: list[str]) -> None:
    body = {
        "name": "protect-mx1",
        "server-cert-mode": "replace",
        "server-cert": [{"name": c} for c in certs],
        "smtps": {"status": "deep-inspection"},
    }
    exists = api.get(f"{SSL}/protect-mx1").status_code == 200
    answer = api.put(f"{SSL}/protect-mx1", json=body) if exists else api.post(SSL, json=body)
    assert answer.status_code == 200, answer.text
    assert (
        api.put("/api/v2/cmdb/firewall/policy/1", json={"ssl-ssh-profile": "protect-mx1"}).status_code == 200
    )


def _smtps_port(api) -> int:
    return next(
        s["port"]
        for s in api.lab.info["devices"][0]["smtp"]
        if s["vip"] == "vip-mx1" and s["mode"] == "smtps"
    )


def _handshake(api, context: ssl.SSLContext) -> list[x509.Certificate]:
    """TLS to the VIP's implicit-TLS port as mx1.example.test; the leaf the client verified."""
    with socket.create_connection(("127.0.0.1", _smtps_port(api)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="mx1.example.test") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return [x509.load_der_x509_certificate(der)]


def _strict_client(api) -> ssl.SSLContext:
    # Trusts only the lab root: verification needs the intermediate from the server.
    return ssl.create_default_context(cafile=str(api.lab.ca_path))


def test_ca_import_serves_the_chain_in_replace_mode(api):
    intermediate = make_ca("fortiauto lab mail intermediate", parent=_lab_ca(api))
    leaf = issue_cert(intermediate, "mx1.example.test", sans=("mx1.example.test",))
    _import_leaf(api, "mx1-chained", leaf)
    _protect(api, ["mx1-chained"])
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(api, _strict_client(api))  # the leaf alone does not verify
    answer = api.post(CA_IMPORT, json={"import_method": "file", "file_content": _b64(intermediate.cert_pem)})
    assert answer.status_code == 200, answer.text
    name = answer.json()["results"]["mkey"]
    assert name == "CA_Cert_1"
    stored = api.results(f"/api/v2/cmdb/vpn.certificate/ca/{name}")[0]
    assert "BEGIN CERTIFICATE" in stored["ca"]
    (served,) = _handshake(api, _strict_client(api))
    assert served == x509.load_pem_x509_certificate(leaf.cert_pem.encode())
    listed = api.results("/api/v2/monitor/system/available-certificates", params={"with_ca": "1"})
    (row,) = [r for r in listed if r["name"] == name]
    assert (row["type"], row["is_ca"], row["q_name"]) == ("remote-ca", True, "ca")
    plain = api.results("/api/v2/monitor/system/available-certificates")
    assert name not in {r["name"] for r in plain}
    # The same CA twice is refused; a leaf is not a CA.
    again = api.post(CA_IMPORT, json={"import_method": "file", "file_content": _b64(intermediate.cert_pem)})
    assert again.json()["error"] == -5
    not_ca = api.post(CA_IMPORT, json={"import_method": "file", "file_content": _b64(leaf.cert_pem)})
    assert not_ca.json()["error"] == -145


def test_list_form_server_cert_presents_the_mail_servers_certificate(api):
    api.faults("shared-ssl-profile")
    mx1 = issue_cert(_lab_ca(api), "mx1.example.test", sans=("mx1.example.test",))
    _import_leaf(api, "mx1-leaf", mx1)
    # Adding fortiauto's entry beside the shared one keeps www's certificate in the list ...
    _protect(api, ["www-example", "mx1-leaf"])
    names = [c["name"] for c in api.results(f"{SSL}/protect-mx1")[0]["server-cert"]]
    assert names == ["www-example", "mx1-leaf"]
    # ... and the VIP for mx1 presents mx1's certificate, not the first in the list.
    (served,) = _handshake(api, _strict_client(api))
    assert served == x509.load_pem_x509_certificate(mx1.cert_pem.encode())
    # Replacing the whole list drops the other site's certificate: what a careless tool does.
    assert api.put(f"{SSL}/protect-mx1", json={"server-cert": [{"name": "mx1-leaf"}]}).status_code == 200
    assert [c["name"] for c in api.results(f"{SSL}/protect-mx1")[0]["server-cert"]] == ["mx1-leaf"]


def test_server_cert_is_one_name_on_6_4(api_for):
    api = api_for("6.4")
    api.faults("shared-ssl-profile")
    assert api.results(f"{SSL}/protect-mx1")[0]["server-cert"] == "www-example"


def test_mail_chain_lab_needs_the_intermediate_imported(lab_api):
    api = lab_api("7.0", mail_chain=True)
    certs = api.lab.state_dir / "certs"
    leaf_pem, chain_pem = (certs / "mx1.pem").read_text(), (certs / "mx1-chain.pem").read_text()
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    intermediate = x509.load_pem_x509_certificate(chain_pem.encode())
    root = x509.load_pem_x509_certificate(api.lab.ca_path.read_bytes())
    assert leaf.issuer == intermediate.subject
    assert intermediate.issuer == root.subject
    # Pass-through (the seed's certificate-inspection): the mail server itself sends its chain.
    (served,) = _handshake(api, _strict_client(api))
    assert served == leaf
    # Protecting SSL Server with the leaf alone breaks a PKIX-validating sender ...
    _import_leaf(api, "mx1-leaf", CertKey(leaf_pem, (certs / "mx1.key").read_text()))
    _protect(api, ["mx1-leaf"])
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(api, _strict_client(api))
    # ... until the intermediate is imported as a CA certificate.
    assert (
        api.post(CA_IMPORT, json={"import_method": "file", "file_content": _b64(chain_pem)}).status_code
        == 200
    )
    (served,) = _handshake(api, _strict_client(api))
    assert served == leaf
