"""The lab's per-version tables: every version-dependent FortiOS fact the lab acts out, with its source.

Written from the public schema and field reports, not from fortiauto's own switches, so the
product and its oracle can disagree and a test can notice. Each fact is a set of release
ranges (inclusive; ``None`` = no upper bound). Sources, by tag:

- [A]   Fortinet's published per-version schema as shipped in the fortinet.fortios Ansible
        collection 2.4.2 (``versioned_schema`` / ``v_range`` of each module; tracks 6.0.0-7.6.4)
- [T]   Terraform provider fortios 1.25 (version-dependent encoders and docs)
- [H]   an SDK generated from the FortiOS 7.6.5 API schema (hfortix-fortios)
- [CLI] Fortinet CLI references (docs.fortinet.com, e.g. 6.4.14 cli-reference 375620)
- [KB]  Fortinet community articles (named inline)
- [ANS#n] / [TF#n] GitHub threads of those two projects

``release.Release.has(name)`` asks this table. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FACTS", "Fact"]

Parts = tuple[int, int, int]


@dataclass(frozen=True)
class Fact:
    """Releases in which something holds: ranges of (first, last) releases, last ``None`` = open."""

    ranges: tuple[tuple[Parts, Parts | None], ...]
    source: str

    def holds(self, release: Parts) -> bool:
        return any(first <= release and (last is None or release <= last) for first, last in self.ranges)


def _since(major: int, minor: int, patch: int = 0, *, source: str) -> Fact:
    return Fact((((major, minor, patch), None),), source)


def _until(major: int, minor: int, patch: int, *, source: str) -> Fact:
    return Fact((((0, 0, 0), (major, minor, patch)),), source)


_LAST_62 = (6, 2, 99)

FACTS: Mapping[str, Fact] = {
    # --- email filter profile ----------------------------------------------------------
    # Per-protocol logging switch is `log` in 6.2.x and 6.4.1; `log-all` in 6.4.0 and 6.4.2+.
    # 6.4.2/6.4.3 are not tracked by [A]; the 6.4.12/6.4.14 CLI references show log-all.
    "emailfilter.log-field-is-log": Fact(
        (((6, 2, 0), _LAST_62), ((6, 4, 1), (6, 4, 1))), "[A] emailfilter_profile log v_range; [CLI] 6.4.1"
    ),
    "emailfilter.feature-set": _since(6, 4, source="[A] feature-set v_range; [CLI]"),
    # `other-webmails` is absent in 6.2 and in the 6.4.1 schema ([A] v_range [6.4.0],[6.4.4..]).
    "emailfilter.other-webmails": Fact(
        (((6, 4, 0), (6, 4, 0)), ((6, 4, 2), None)), "[A] other_webmails v_range"
    ),
    # 8.0 adds uuid and Security Fabric object fields to the profile ([CLI] 8.0.0 cli-reference 268788570).
    "emailfilter.fabric-object": _since(8, 0, source="[CLI] 8.0.0 emailfilter profile"),
    # Block/allow list: `spambwl` / `spam-bwl-table` 6.2-6.4.x, renamed `spambal` / `spam-bal-table` in 7.0.
    "emailfilter.spambal": _since(7, 0, source="[A] options v_range; [CLI] 7.x"),
    # --- SSL/SSH inspection profile ---------------------------------------------------
    # `server-cert`: one name up to 6.4, a list of {name} from 7.0 ([T] sends a string below 7.0.0).
    "ssl.server-cert-list": _since(7, 0, source="[A] server_cert.name v_range; [T] expand...ServerCert"),
    "ssl.allowlist": _since(7, 0, source="[A] whitelist -> allowlist"),
    "ssl.block-blocklisted": _since(7, 0, source="[A] block-blacklisted -> block-blocklisted"),
    "ssl.anomaly-log": _since(7, 0, 2, source="[A] ssl-anomalies-log -> ssl-anomaly-log at 7.0.2"),
    "ssl.unsupported-ssl-version": _since(7, 0, 1, source="[A]"),
    "ssl.unsupported-ssl-version-inspect": Fact((((7, 0, 1), (7, 0, 3)),), "[A] option v_range"),
    "ssl.cert-probe-failure-https": _since(7, 0, source="[A]"),
    "ssl.cert-probe-failure-ssl": _since(7, 0, 1, source="[A]"),
    "ssl.min-allowed-ssl-version": _since(7, 0, 4, source="[A]"),
    "ssl.encrypted-client-hello": _since(7, 4, 4, source="[A]"),
    "ssl.quic-enable": Fact((((7, 4, 1), (7, 4, 1)),), "[A] quic enable/disable in 7.4.1"),
    "ssl.quic-action": _since(7, 4, 2, source="[A] quic inspect/bypass/block from 7.4.2"),
    "ssl.udp-not-quic": _since(7, 6, 1, source="[A] https udp-not-quic"),
    "ssl.supported-alpn": _since(7, 0, source="[A]"),
    "ssl.dot": _since(7, 0, source="[A] dot container"),
    "ssl.server-cert-log": _since(7, 0, 1, source="[A] ssl-server-cert-log, ssl-handshake-log"),
    "ssl.exemption-ip-rating": _since(7, 0, 6, source="[A]"),
    "ssl.ech-outer-sni": _since(7, 4, 4, source="[A]"),
    # --- policy, VIP, certificates, antivirus -----------------------------------------
    "policy.dlp-profile": _since(7, 2, source="[A] dlp-sensor -> dlp-profile at 7.2.0"),
    # 6.4 policies print an empty ssl-ssh-profile / profile-protocol-options by default
    # (fw-policy-config-pre64 / fw-policy-config samples); 7.x print no-inspection / default.
    "policy.default-inspection-names": _since(7, 0, source="fortigate_exporter policy samples; [H]"),
    "vip.status": _since(7, 0, source="[A] firewall_vip status"),
    "vip.access-proxy": _since(7, 0, source="[A] firewall_vip type options"),
    "certificate.acme2": _since(7, 0, source="[A] enroll-protocol options"),
    "antivirus.smtp-av-scan": _since(7, 0, source="[A] antivirus_profile smtp av-scan"),
    # --- protocol and envelope ----------------------------------------------------------
    # 7.x prints port lists as JSON arrays; 6.4 builds printed a scalar and "" when unset (TF#222, TF#148).
    "rest.ports-as-array": _since(7, 0, source="[T] convintflist2str; TF#222"),
    "rest.list-counters": _since(7, 0, source="third-party SDK docs (size, matched_count, next_idx)"),
    # `cli_error` became a list of lines on 7.6 (observed on 7.6.5 in ANS#409; issue 16 reports it
    # for the family; the first build is not documented, so the lab uses it from 7.6.0).
    "rest.cli-error-list": _since(7, 6, source="ANS#409 (7.6.5)"),
    # --- authentication -----------------------------------------------------------------
    "auth.api-authentication": _since(6, 4, 2, source="fortios-protocol 7.3: /api/v2/authentication 6.4.2+"),
    # 7.6.3+: /logincheck answers 200 without a session cookie; /api/v2/authentication is the way
    # ([KB] "FortiOS v7.6.3: /logincheck no longer returns a session cookie"; ANS#398; TF#390).
    "auth.logincheck-session": _until(7, 6, 2, source="[KB] 227837; ANS#398; TF#390"),
    # 7.6.3+ names the session cookies session_key_<port>_<hash> and ccsrf_token_<port>_<hash>.
    "auth.session-key-cookies": _since(7, 6, 3, source="[KB] 227837"),
    # 7.4.5 made `?access_token=` opt-in (system global rest-api-key-url-query).
    "auth.url-token-opt-in": _since(7, 4, 5, source="[KB] Configuring FortiGate 7.4.5 to allow access_token"),
    # --- monitor ------------------------------------------------------------------------
    "monitor.backup-post-only": _since(7, 4, 5, source="ANS#350, ANS#361, ANS#380; netlab PR 3465"),
    "monitor.ha-peer-primary-flag": _since(7, 4, source="fortigate_exporter testdata ha-peer-74+"),
}
