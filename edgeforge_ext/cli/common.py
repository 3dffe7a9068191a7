"""Pieces every command shares: the global state, the shared build options, config loading."""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from edgeforge_ext.cli.state import State

if TYPE_CHECKING:
    from edgeforge_ext.config import Config


@dataclass(frozen=True)
class FlagSpec:
    """One shared option: its parameter name, the config key it sets, its type and Typer option."""

    param: str
    key: str
    annotation: Any
    option: Any
    convert: Callable[[Any], Any] | None = None


def _pairs(what: str) -> Callable[[Any], Any]:
    def convert(items: list[str] | None) -> dict[str, str] | None:
        from edgeforge_ext.config import parse_pairs

        return parse_pairs(list(items), what, "flag") if items else None

    return convert


def _list_or_none(items: list[str] | None) -> list[str] | None:
    return list(items) if items else None


def split_commas(items: list[str] | None) -> list[str] | None:
    """Repeatable options that also take `a,b` (--skip, --push-to)."""
    if not items:
        return None
    return [p.strip() for item in items for p in item.split(",") if p.strip()]


def _opt(*names: str, help: str, metavar: str | None = None) -> Any:
    return typer.Option(None, *names, help=help, metavar=metavar, show_default=False)


# Options shared by build, plan and render (and read by checkout/images where they apply).
BUILD_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("canvos_url", "canvos.url", str | None,
             _opt("--canvos-url", help="CanvOS git URL (default: upstream CanvOS on GitHub); a private fork's "
                  "https://user:token@... URL belongs in EDGEFORGE_CANVOS_URL: a flag's value shows in ps",
                  metavar="URL")),
    FlagSpec("ref", "canvos.ref", str | None, _opt("--ref", help="CanvOS tag, branch or SHA; 'latest' = newest "
                                                   "release tag", metavar="REF")),
    FlagSpec("arch", "build.arch", str | None, _opt("--arch", help="target architecture: amd64 (default) or arm64")),
    FlagSpec("os", "build.os", str | None,
             _opt("--os", help="OS_DISTRIBUTION: ubuntu (default), opensuse-leap, rhel, sles")),
    FlagSpec("os_version", "build.os_version", str | None, _opt("--os-version", help="OS_VERSION (default 22.04)")),
    FlagSpec("k8s_distribution", "build.k8s_distribution", str | None,
             _opt("--k8s-distribution", help="K8S_DISTRIBUTION: k3s (default), rke2, kubeadm, kubeadm-fips, nodeadm, "
                  "canonical")),
    FlagSpec("k8s_version", "build.k8s_versions", list[str] | None,
             _opt("--k8s-version", help="Kubernetes version to build a provider image for (repeatable; must be "
                  "listed in CanvOS k8s_version.json)", metavar="V"),
             _list_or_none),
    FlagSpec("all_k8s_versions", "build.all_k8s_versions", bool | None,
             typer.Option(None, "--all-k8s-versions", help="build every version in k8s_version.json "
                          "(2-5 GB each)", show_default=False)),
    FlagSpec("allow_unlisted_k8s_version", "build.allow_unlisted_k8s_version", bool | None,
             typer.Option(None, "--allow-unlisted-k8s-version", show_default=False,
                          help="build a --k8s-version the checkout's k8s_version.json does not list (CanvOS "
                          "itself does not check it; the provider may not support it)")),
    FlagSpec("custom_tag", "build.custom_tag", str | None,
             _opt("--custom-tag", help="CUSTOM_TAG, the end of the image tags: lower-case letters and digits "
                  "(default demo)")),
    FlagSpec("iso_name", "build.iso_name", str | None,
             _opt("--iso-name", help="ISO_NAME: the installer ISO file name without .iso (default "
                  "palette-edge-installer)")),
    FlagSpec("image_registry", "build.image_registry", str | None,
             _opt("--image-registry", help="IMAGE_REGISTRY the provider images are named with (default ttl.sh)")),
    FlagSpec("image_repo", "build.image_repo", str | None,
             _opt("--image-repo", help="IMAGE_REPO: the provider images' repository (default: the OS "
                  "distribution)")),
    FlagSpec("target", "build.target", str | None,
             _opt("--target", help="what to build: all (default: ISO and provider images), iso, "
                  "provider-images")),
    FlagSpec("build_arg", "build.extra_args", list[str] | None,
             _opt("--build-arg", help="extra KEY=VALUE for .arg (repeatable); KEY must be an ARG the checkout's "
                  "Earthfile declares", metavar="KEY=VALUE"),
             _pairs("--build-arg")),
    FlagSpec("uki", "build.uki", bool | None,
             typer.Option(None, "--uki", show_default=False,
                          help="IS_UKI=true: a Secure Boot (Unified Kernel Image) ISO; needs the keys of "
                          "`./earthly.sh +uki-genkey` in the checkout's secure-boot/")),
    FlagSpec("ubuntu_pro_key_file", "build.ubuntu_pro_key_file", Path | None,
             _opt("--ubuntu-pro-key-file", help="file holding the Ubuntu Pro token (or EDGEFORGE_UBUNTU_PRO_KEY); "
                  "passed as the checked-out CanvOS tag takes it, never in argv or a container's environment",
                  metavar="FILE")),
    FlagSpec("ca_cert", "build.ca_certs", list[str] | None,
             _opt("--ca-cert", help="a PEM CA certificate the build trusts, e.g. a TLS-intercepting proxy's "
                  "(repeatable; certs/ or PROXY_CERT_PATH, as the CanvOS tag takes it)", metavar="FILE"),
             _list_or_none),
    FlagSpec("inputs_registry", "build.inputs_registry", str | None,
             _opt("--inputs-registry", help="HOST/PREFIX the build pulls its own images from (mirrored there by "
                  "`images mirror --build-inputs`): no route to the internet needed", metavar="HOST/PREFIX")),
    FlagSpec("registry", "registry.domain", str | None,
             _opt("--registry", help="private external registry for user-data, e.g. 10.10.254.254:8000/spectro-images",
                  metavar="DOMAIN")),
    FlagSpec("registry_username", "registry.username", str | None,
             _opt("--registry-username", help="user name for --registry")),
    FlagSpec("registry_password_file", "registry.password_file", Path | None,
             _opt("--registry-password-file", help="file holding the --registry password (or "
                  "EDGEFORGE_REGISTRY_PASSWORD)", metavar="FILE")),
    FlagSpec("insecure_registry", "registry.insecure", bool | None,
             typer.Option(None, "--insecure-registry", show_default=False,
                          help="--registry speaks plain HTTP or has an unverified TLS certificate")),
    FlagSpec("registry_mapping", "registry.mapping_rules", list[str] | None,
             _opt("--registry-mapping", help="SRC=DST mapping rule (repeatable; switches to "
                  "stylus.externalRegistries)", metavar="SRC=DST"), _pairs("--registry-mapping")),
    FlagSpec("k8s_registries_yaml", "registry.k8s_registries_yaml", bool | None,
             typer.Option(None, "--k8s-registries-yaml", show_default=False,
                          help="K3s/RKE2: write registries.yaml with the external registry's credentials from "
                          "an initramfs stage (core Kubernetes images pulled from it)")),
    FlagSpec("palette_endpoint", "site.palette_endpoint", str | None,
             _opt("--palette-endpoint", help="Palette API endpoint, e.g. api.spectrocloud.com")),
    FlagSpec("project_name", "site.project_name", str | None, _opt("--project-name", help="Palette project")),
    FlagSpec("edge_host_token_file", "site.edge_host_token_file", Path | None,
             _opt("--edge-host-token-file", help="file holding the registration token (or "
                  "EDGEFORGE_EDGE_HOST_TOKEN)", metavar="FILE")),
    FlagSpec("template_dir", "render.template_dir", Path | None,
             _opt("--template-dir", help="your own user-data.j2 / arg.j2 (same variables as the packaged ones)",
                  metavar="DIR")),
    FlagSpec("extra_user_data", "render.extra_user_data", Path | None,
             _opt("--extra-user-data", help="a YAML file merged into user-data (its keys win; conflicts are "
                  "reported)", metavar="FILE")),
    FlagSpec("earthly_image", "earthly.image", str | None,
             _opt("--earthly-image", help="the Earthly image to run (default: the one the checked-out CanvOS "
                  "earthly.sh pins)", metavar="IMAGE")),
    FlagSpec("buildkit_host", "earthly.buildkit_host", str | None,
             _opt("--buildkit-host", help="remote BuildKit, tcp://HOST:8372 (Earthly then runs unprivileged; "
                  "plain TCP unless --buildkit-tls-* are given)", metavar="URL")),
    FlagSpec("buildkit_tls_ca", "earthly.buildkit_tls_ca", Path | None,
             _opt("--buildkit-tls-ca", help="CA certificate of an mTLS remote BuildKit", metavar="FILE")),
    FlagSpec("buildkit_tls_cert", "earthly.buildkit_tls_cert", Path | None,
             _opt("--buildkit-tls-cert", help="client certificate for an mTLS remote BuildKit", metavar="FILE")),
    FlagSpec("buildkit_tls_key", "earthly.buildkit_tls_key", Path | None,
             _opt("--buildkit-tls-key", help="client key for an mTLS remote BuildKit", metavar="FILE")),
    FlagSpec("output", "output.dir", Path | None,
             _opt("--output", help="output directory for the ISO, log and report (default: WORKDIR/output); "
                  "for render: where user-data and .arg go; for push: the build to push again", metavar="DIR")),
)

PASSWORD_STDIN = FlagSpec("registry_password_stdin", "", bool,
                          typer.Option(False, "--registry-password-stdin",
                                       help="read the --registry password from stdin (like docker login)"))

F = TypeVar("F", bound=Callable[..., Any])


def with_flags(specs: tuple[FlagSpec, ...], *, password_stdin: bool = True) -> Callable[[F], F]:
    """Add shared options to a command; the command receives them as `flags` (dotted key -> value)
    and `password_stdin`."""

    def decorate(func: F) -> F:
        sig = inspect.signature(func)
        # Resolve string annotations (PEP 563) against the command's own module, so Typer sees them.
        hints = typing.get_type_hints(func, include_extras=True)
        params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
                  if p.name not in ("flags", "password_stdin")]
        extra = [inspect.Parameter(s.param, inspect.Parameter.KEYWORD_ONLY, default=s.option,
                                   annotation=s.annotation) for s in specs]
        if password_stdin:
            extra.append(inspect.Parameter(PASSWORD_STDIN.param, inspect.Parameter.KEYWORD_ONLY,
                                           default=PASSWORD_STDIN.option, annotation=bool))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            flags: dict[str, Any] = {}
            for s in specs:
                value = kwargs.pop(s.param, None)
                if s.convert is not None:
                    value = s.convert(value)
                if isinstance(value, Path):
                    value = str(value)
                if value is not None:
                    flags[s.key] = value
            stdin = bool(kwargs.pop(PASSWORD_STDIN.param, False)) if password_stdin else False
            return func(*args, flags=flags, password_stdin=stdin, **kwargs)

        new_sig = sig.replace(parameters=[*params, *extra], return_annotation=hints.get("return", None))
        wrapper.__signature__ = new_sig  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in new_sig.parameters.values()}
        return wrapper  # type: ignore[return-value]

    return decorate


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def load(ctx: typer.Context, flags: dict[str, Any] | None = None, *, password_stdin: bool = False) -> Config:
    """Build the one Config for this invocation from every layer."""
    from edgeforge_ext import console
    from edgeforge_ext.config import load_config
    from edgeforge_ext.secrets import secret_from_stdin

    st = state(ctx)
    all_flags = dict(flags or {})
    if st.workdir is not None:
        all_flags["workdir"] = str(st.workdir)
    password = secret_from_stdin("registry password") if password_stdin else None
    config = load_config(st.config_path, env=dict(os.environ), flags=all_flags, registry_password=password)
    for warning in config.warnings:
        console.warn(warning)
    return config


def wants_json(ctx: typer.Context, local: bool) -> bool:
    return local or state(ctx).json
