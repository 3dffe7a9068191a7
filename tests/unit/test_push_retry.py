"""Which daemon push errors get another attempt: the daemon's own wording, as `docker push` prints it."""

import pytest

from edgeforge_ext.engine import _transient


@pytest.mark.parametrize("text", [
    "received unexpected HTTP status: 500 Internal Server Error",
    "received unexpected HTTP status: 502 Bad Gateway",
    "received unexpected HTTP status: 503 Service Unavailable",
    "Put \"http://10.10.254.254:8000/v2/x/blobs/uploads/1\": net/http: TLS handshake timeout",
    "write tcp 127.0.0.1:5000: connection reset by peer",
    "toomanyrequests: too many requests",
    # docker-registry's link-file race between two pushes into one repository (the daemon's words, from CI)
    "errors: digest invalid manifest blob unknown: blob unknown to registry",
])
def test_a_server_side_or_network_failure_is_tried_again(text):
    assert _transient(text)


@pytest.mark.parametrize("text", [
    "unauthorized: authentication required",
    "denied: requested access to the resource is denied",
    "received unexpected HTTP status: 500 Internal Server Error; unauthorized",  # the credentials decide
    "manifest invalid: manifest invalid",
    "name unknown: repository name not known to registry",
])
def test_a_refusal_is_not_tried_again(text):
    assert not _transient(text)
