"""`edgeforge-ext clean` removes what a work directory's builds left, and only that."""

from __future__ import annotations

import json

from edgeforge_ext.build.earthly import cache_volume
from edgeforge_ext.cli import run
from edgeforge_ext.engine import LABEL, WORKDIR_LABEL


def test_clean_removes_this_workdirs_leftovers_only(docker_client, busybox_image, tmp_path, capsys):
    mine, other = (tmp_path / "mine").resolve(), (tmp_path / "other").resolve()
    left = docker_client.containers.create(busybox_image, ["true"],
                                           labels={LABEL: "earthly", WORKDIR_LABEL: str(mine)})
    keep = docker_client.containers.create(busybox_image, ["true"],
                                           labels={LABEL: "earthly", WORKDIR_LABEL: str(other)})
    volume = docker_client.volumes.create(cache_volume(mine), labels={LABEL: "buildkit-cache"})
    other_volume = docker_client.volumes.create(cache_volume(other), labels={LABEL: "buildkit-cache"})
    try:
        code = run(["--workdir", str(mine), "clean", "--keep-images", "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 0
        names = {c.id for c in docker_client.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True)}
        assert left.id not in names and keep.id in names
        assert volume.name in out["volumes"] and other_volume.name not in out["volumes"]
        assert docker_client.images.get(busybox_image)  # --keep-images kept images
        assert run(["--workdir", str(mine), "clean", "--keep-images"]) == 0
        assert "nothing to remove" in capsys.readouterr().err
    finally:
        keep.remove(force=True)
        other_volume.remove(force=True)


def test_clean_removes_this_workdirs_own_image_names_only(docker_client, busybox_image, tmp_path, capsys):
    from edgeforge_ext.build.plan import local_image_registry

    mine, other = (tmp_path / "mine").resolve(), (tmp_path / "other").resolve()
    image = docker_client.images.get(busybox_image)
    local = f"{local_image_registry(mine)}/ubuntu:k3s-1.32.3-v4.9.21-clean"
    theirs = f"{local_image_registry(other)}/ubuntu:k3s-1.32.3-v4.9.21-clean"
    users = "edgeforge-test/clean-users-name:k3s-1.32.3"
    for name in (local, theirs, users):
        image.tag(*name.rsplit(":", 1))
    try:
        assert run(["--workdir", str(mine), "clean", "--json"]) == 0
        assert local in json.loads(capsys.readouterr().out)["images"]
        tags = set(docker_client.images.get(busybox_image).tags)
        assert local not in tags and theirs in tags and users in tags  # only this work directory's names
    finally:
        for name in (theirs, users):
            docker_client.api.remove_image(name)
