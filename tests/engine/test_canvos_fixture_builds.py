"""The CanvOS fixture at every tag builds in the Earthly double, with the outputs CanvOS gives."""

from __future__ import annotations

import pytest

from edgeforge_ext.fsutil import sha256_file
from edgeforge_ext.iso.verify import find_user_data, read_sha256_file
from tests.engine.double_run import USER_DATA, checkout, remove_root_owned, run_double

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("ref", ["v4.4.12", "v4.9.38", "v4.10.0", "main"])
def test_iso_at_each_tag(ref, docker_client, standin_earthly_image, canvos_repo, tmp_path):
    path = checkout(canvos_repo, ref, tmp_path / "CanvOS")
    try:
        run = run_double(docker_client, standin_earthly_image, path, ["+iso"])
        assert run.code == 0, run.output
        iso = path / "build" / "palette-edge-installer.iso"
        # +build-iso: `sha256sum $ISO_NAME.iso > $ISO_NAME.iso.sha256`, user-data at /files-iso/config.yaml
        assert read_sha256_file(iso.with_name(iso.name + ".sha256"), iso.name) == sha256_file(iso)
        assert find_user_data(iso, USER_DATA) == "/files-iso/config.yaml"
    finally:
        remove_root_owned(docker_client, standin_earthly_image, path)


def test_uki_iso_has_user_data_at_the_root_and_no_checksum(docker_client, standin_earthly_image, canvos_repo,
                                                          tmp_path):
    """+build-uki-iso: /overlay/config.yaml and no .sha256 (as upstream); it needs the keys +uki-genkey made."""
    path = checkout(canvos_repo, "v4.10.0", tmp_path / "CanvOS")
    try:
        missing_keys = run_double(docker_client, standin_earthly_image, path, ["+iso", "--IS_UKI=true"])
        assert missing_keys.code == 1
        keys = run_double(docker_client, standin_earthly_image, path, ["+uki-genkey"])
        assert keys.code == 0, keys.output
        assert (path / "secure-boot" / "enrollment" / "PK.auth").is_file()
        run = run_double(docker_client, standin_earthly_image, path, ["+iso", "--IS_UKI=true"])
        assert run.code == 0, run.output
        iso = path / "build" / "palette-edge-installer.iso"
        assert find_user_data(iso, USER_DATA) == "/config.yaml"
        assert not iso.with_name(iso.name + ".sha256").exists()
    finally:
        remove_root_owned(docker_client, standin_earthly_image, path)
