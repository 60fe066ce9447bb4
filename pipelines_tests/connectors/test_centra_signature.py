"""One `X-Centra-Signature` implementation, shared by the connector, the intake and the simulator."""

from __future__ import annotations

import pipelines.intake.verify as intake_verify
import pipelines.simulators.centra.webhooks as sim_webhooks
from pipelines.connectors.centra import centra_signature, verify_webhook_signature
from pipelines.intake.verify import check_centra_signature
from pipelines.simulators.centra import sign

SECRET = "s3cret"
BODY = "payload=%7B%22events%22%3A%5B%5D%7D"
T = 1_772_442_000


def test_intake_and_simulator_use_the_connector_implementation() -> None:
    assert intake_verify.centra_signature is centra_signature
    assert sim_webhooks.centra_signature is centra_signature
    assert sim_webhooks.verify_signature is verify_webhook_signature


def test_str_and_bytes_sign_alike_and_each_side_accepts_the_other() -> None:
    digest = centra_signature(SECRET, T, BODY)
    assert digest == centra_signature(SECRET, str(T), BODY.encode()) and len(digest) == 64
    header = sign(SECRET, BODY, T)
    assert header == f"t={T},v1={digest}"
    check_centra_signature(header, BODY.encode(), SECRET, now=T)  # raises when refused
    assert verify_webhook_signature(SECRET, header, BODY, now=T + 300)
    assert verify_webhook_signature(SECRET, f"t={T}, v1={digest}", BODY.encode(), now=T)


def test_refusals() -> None:
    header = sign(SECRET, BODY, T)
    assert not verify_webhook_signature("other", header, BODY, now=T)
    assert not verify_webhook_signature(SECRET, header, BODY + "x", now=T)
    assert not verify_webhook_signature(SECRET, header, BODY, now=T + 301)
    assert not verify_webhook_signature(SECRET, None, BODY, now=T)
    assert not verify_webhook_signature(SECRET, "v1=abc", BODY, now=T)
    assert not verify_webhook_signature(SECRET, f"t={T},v1=\u00e9\u00e9", BODY, now=T)  # non-ASCII: no TypeError
