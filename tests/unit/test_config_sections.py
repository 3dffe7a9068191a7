"""The typed sections and settings.KEYS describe the same keys, and a resolved config reads the same
through both."""

from __future__ import annotations

from dataclasses import fields

import pytest

from edgeforge_ext.config import load_config
from edgeforge_ext.config_sections import SECTIONS, TOP_LEVEL
from edgeforge_ext.settings import KEYS


def test_every_key_is_one_section_field_and_back():
    from_sections = {f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in fields(cls)}
    keys = {k.name for k in KEYS}
    assert from_sections == keys - set(TOP_LEVEL)


def test_sections_read_the_resolved_values_immutably(tmp_path):
    config = load_config(None, env={"EDGEFORGE_BUILD_K8S_VERSIONS": "1.31.6,1.32.3"},
                         flags={"build.extra_args": {"DEBUG": "true"}, "registry.domain": "reg.example/x",
                                "registry.username": "builder"}, cwd=tmp_path)
    assert config.build.k8s_versions == ("1.31.6", "1.32.3")
    assert config.build.extra_args == {"DEBUG": "true"}
    with pytest.raises(TypeError):
        config.build.extra_args["X"] = "1"  # type: ignore[index]
    assert config.preflight.min_cpus == 4 and config.earthly.privileged is True
    assert config.image_repo == "ubuntu"
    [entry] = config.all_registries()
    assert (entry.domain, entry.username) == ("reg.example/x", "builder")
    for key in KEYS:
        if key.name in TOP_LEVEL:
            continue
        name, field = key.name.split(".", 1)
        value = getattr(getattr(config, name), field)
        raw = config[key.name]
        assert (list(value) if isinstance(value, tuple) else dict(value) if key.kind == "dict" else value) == raw
