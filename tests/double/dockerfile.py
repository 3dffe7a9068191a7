"""FROM DOCKERFILE: the BuildKit Dockerfile frontend, for the Dockerfiles CanvOS ships (ARG, FROM, RUN,
COPY, ENV, WORKDIR, and instructions that only touch the image config).

Rules that matter (moby/buildkit frontend/dockerfile/dockerfile2llb/convert.go, in Earthly's fork):

- ARGs before the first FROM are "meta args"; `--build-arg K=V` values replace their defaults;
- the FROM name is expanded with the meta args; an empty result fails: "base name (%s) should not be
  blank" (convert.go `if name == ""`), which Earthly reports as "dockerfile2llb <path>: ..."
  (earthfile2llb/converter.go:439-441) inside "from dockerfile" (interpreter.go:895-897);
- an ARG after FROM takes its --build-arg value (or its default) and is visible to RUN;
- RUN runs `/bin/sh -c` with the ARGs and ENVs as environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import shell, world
from .earthfile import split_args


class DockerfileError(Exception):
    pass


@dataclass
class Instruction:
    name: str
    rest: str
    line: int


@dataclass
class Stage:
    base: str
    instructions: list[Instruction] = field(default_factory=list)


def parse(text: str) -> tuple[list[Instruction], list[Stage]]:
    """Meta ARGs and stages; `\\` continues a line, `#` lines are comments."""
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if pending is None and (not stripped or stripped.startswith("#")):
            continue
        if pending is not None and stripped.startswith("#"):
            continue
        cur = (pending[0], pending[1] + " " + stripped) if pending else (number, stripped)
        if cur[1].endswith("\\"):
            pending = (cur[0], cur[1][:-1].rstrip())
            continue
        logical.append(cur)
        pending = None
    if pending is not None:
        logical.append(pending)
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for number, line in logical:
        name, _, rest = line.partition(" ")
        ins = Instruction(name.upper(), rest.strip(), number)
        if ins.name == "FROM":
            stages.append(Stage(ins.rest.split()[0] if ins.rest else ""))
        elif not stages:
            if ins.name != "ARG":
                raise DockerfileError(f"no build stage in current context (line {number})")
            meta.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise DockerfileError("the Dockerfile (Dockerfile) cannot be empty")
    return meta, stages


@dataclass
class Hooks:
    """What the frontend needs from the interpreter."""

    pull: Callable[[str], str]  # image name -> a new filesystem directory
    run: Callable[[str, str, str, Mapping[str, str]], int]  # root, workdir, script, env -> exit code
    copy_context: Callable[[str, list[str], str, str], None]  # root, sources, dest, workdir


def build(text: str, build_args: Mapping[str, str], hooks: Hooks, df_path: str) -> tuple[str, dict[str, str], str]:
    """(filesystem, environment, workdir) of the last stage."""
    meta_args, stages = parse(text)
    meta: dict[str, str] = {}
    for ins in meta_args:
        key, sep, default = ins.rest.partition("=")
        key = key.strip()
        meta[key] = build_args[key] if key in build_args else (shell.expand(default, meta) if sep else "")
    stage = stages[-1]
    name = shell.expand(stage.base, meta)
    if name == "":
        raise DockerfileError(f"dockerfile2llb {df_path}: base name ({stage.base}) should not be blank")
    try:
        world.parse_normalized_named(name)
    except world.ReferenceError as exc:  # convert.go: "failed to parse stage name %q"
        raise DockerfileError(f'dockerfile2llb {df_path}: failed to parse stage name "{name}": {exc}') from exc
    root = hooks.pull(name)
    env: dict[str, str] = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    args: dict[str, str] = {}
    workdir = "/"
    for ins in stage.instructions:
        scope = {**args, **env}
        if ins.name == "ARG":
            key, sep, default = ins.rest.partition("=")
            key = key.strip()
            if key in build_args:
                args[key] = build_args[key]
            elif key in meta and not sep:
                args[key] = meta[key]
            else:
                args[key] = shell.expand(default, scope) if sep else ""
        elif ins.name == "ENV":
            key, sep, value = ins.rest.partition("=")
            if not sep:
                key, _, value = ins.rest.partition(" ")
            env[key.strip()] = shell.expand(value.strip(), scope)
        elif ins.name == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, shell.expand(ins.rest, scope)))
        elif ins.name == "RUN":
            code = hooks.run(root, workdir, ins.rest, {**args, **env})
            if code != 0:
                raise DockerfileError(
                    f'process "/bin/sh -c {ins.rest}" did not complete successfully: exit code: {code}')
        elif ins.name in ("COPY", "ADD"):
            words = [w for w in split_args(ins.rest) if not w.startswith("--")]
            if len(words) < 2:
                raise DockerfileError(f"{ins.name} requires at least two arguments (line {ins.line})")
            srcs = [shell.expand(w, scope) for w in words[:-1]]
            hooks.copy_context(root, srcs, shell.expand(words[-1], scope), workdir)
        # LABEL, ENTRYPOINT, CMD, EXPOSE, VOLUME, USER, SHELL, HEALTHCHECK: image config only.
    return root, env, workdir
