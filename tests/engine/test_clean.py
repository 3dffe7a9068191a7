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
        names = {c.id for c in docker_client.containers.list(all=True, filters={"label": LABEL})}
        assert left.id not in names and keep.id in names
        assert volume.name in out["volumes"] and other_volume.name not in out["volumes"]
        assert docker_client.images.get(busybox_image)  # --keep-images kept images
        assert run(["--workdir", str(mine), "clean", "--keep-images"]) == 0
        assert "nothing to remove" in capsys.readouterr().err
    finally:
        keep.remove(force=True)
        other_volume.remove(force=True)
