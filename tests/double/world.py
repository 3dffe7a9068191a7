"""The double's "world": image references, which registries need credentials, what a pulled image holds.

Nothing is pulled for real (the tests run offline). A FROM of a well-formed reference "pulls" an image
made of the tools the double carries; the rules a wrapper depends on are real:

- The reference must parse as Docker's reference grammar, after expansion. An empty or malformed one
  fails as `reference.ParseNormalizedNamed` does: "invalid reference format", or "invalid reference
  format: repository name must be lowercase" (github.com/docker/distribution/reference normalize.go,
  used by earthfile2llb/converter.go:2556-2559 "parse normalized named %s").
- PRIVATE_REGISTRIES need credentials in the Docker config Earthly reads (/root/.docker/config.json in
  the image; `$DOCKER_CONFIG/config.json` when set): an `auths` entry for the host (any of the key forms
  Docker writes) or a credential helper that exists. Without them the image config cannot be resolved:
  "resolve image config for <ref>: unexpected status from HEAD request to https://<host>/v2/<repo>/
  manifests/<tag>: 401 Unauthorized" (converter.go:2570-2572 wrapping the containerd resolver's
  remotes/docker/resolver.go "unexpected status from %s request to %s: %s").
- Hosts under UNREACHABLE_SUFFIX do not answer (a dial error).
- What an image holds: busybox for everything; images whose name says they build ISOs (Kairos
  osbuilder-tools, AuroraBoot) also hold xorriso, as the real ones do.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass

PRIVATE_REGISTRIES = ("registry.private.test",)
UNREACHABLE_SUFFIX = ".unreachable.test"
ISO_TOOL_IMAGES = ("osbuilder-tools", "auroraboot")
DEFAULT_DOMAIN = "docker.io"

# distribution/reference regexp.go
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"  # regexp.go has [-]*: the same language; [-]+ keeps Python's backtracking linear
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^((?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::({_TAG}))?(?:@({_DIGEST}))?$")
_ANCHORED_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")


class ReferenceError(Exception):
    pass


class PullError(Exception):
    pass


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str
    digest: str

    def __str__(self) -> str:
        return f"{self.domain}/{self.path}" + (f":{self.tag}" if self.tag else "") + \
            (f"@{self.digest}" if self.digest else "")


def _split_domain(name: str) -> tuple[str, str]:
    """normalize.go splitDockerDomain."""
    i = name.find("/")
    if i == -1 or (not any(c in name[:i] for c in ".:") and name[:i] != "localhost"
                   and name[:i].lower() == name[:i]):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = name[:i], name[i + 1:]
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder


def parse_normalized_named(text: str) -> Reference:
    """normalize.go ParseNormalizedNamed (+ the default tag "latest" of reference.TagNameOnly)."""
    if _ANCHORED_IDENTIFIER.match(text):
        raise ReferenceError(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(text)
    remote = remainder.split(":", 1)[0] if ":" in remainder else remainder
    if remote.lower() != remote:
        raise ReferenceError("invalid reference format: repository name must be lowercase")
    m = _REFERENCE.match(f"{domain}/{remainder}")
    if not m:
        raise ReferenceError("invalid reference format")
    full = m.group(1)
    return Reference(domain, full[len(domain) + 1:], m.group(2) or ("" if m.group(3) else "latest"),
                     m.group(3) or "")


def docker_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.environ.get("HOME") or "/root", ".docker")
    return os.path.join(base, "config.json")


def _auth_keys(host: str) -> set[str]:
    return {host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/",
            f"{host}/v1/", f"{host}/v2/"}


def has_credentials(host: str) -> tuple[bool, str]:
    """(found, why-not). Docker config: `auths` (with `auth` or username/password), `credHelpers`,
    `credsStore` (a helper must exist as docker-credential-<name> on PATH)."""
    try:
        with open(docker_config_path(), encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        return False, "no Docker config"
    except (OSError, ValueError) as exc:
        return False, f"unreadable Docker config: {exc}"
    helper = (cfg.get("credHelpers") or {}).get(host) or cfg.get("credsStore")
    if helper:
        binary = f"docker-credential-{helper}"
        if not any(os.access(os.path.join(p, binary), os.X_OK) for p in os.environ.get("PATH", "").split(":")):
            raise PullError(f'error getting credentials - err: exec: "{binary}": executable file not found in '
                            "$PATH, out: ``")
        return True, ""
    for key, entry in (cfg.get("auths") or {}).items():
        if key in _auth_keys(host) and isinstance(entry, dict):
            if entry.get("username") or entry.get("identitytoken"):
                return True, ""
            raw = entry.get("auth") or ""
            try:
                user, _, _ = base64.b64decode(raw).decode().partition(":")
            except ValueError:
                continue
            if user:
                return True, ""
    return False, f"no auths entry for {host}"


def resolve(image_name: str) -> Reference:
    """What FROM does before it can use an image (converter.go:2546-2574 internalFromClassical)."""
    try:
        ref = parse_normalized_named(image_name)
    except ReferenceError as exc:
        raise PullError(f"parse normalized named {image_name}: {exc}") from exc
    if ref.domain.endswith(UNREACHABLE_SUFFIX) or ref.domain.split(":")[0].endswith(UNREACHABLE_SUFFIX):
        raise PullError(
            f"resolve image config for {image_name}: failed to do request: Head \"https://{ref.domain}/v2/"
            f"{ref.path}/manifests/{ref.tag or ref.digest}\": dial tcp: lookup {ref.domain.split(':')[0]}: "
            "no such host")
    if ref.domain.split(":")[0] in PRIVATE_REGISTRIES:
        ok, _why = has_credentials(ref.domain)
        if not ok:
            raise PullError(
                f"resolve image config for {image_name}: unexpected status from HEAD request to "
                f"https://{ref.domain}/v2/{ref.path}/manifests/{ref.tag or ref.digest}: 401 Unauthorized")
    return ref


def has_iso_tools(ref: Reference) -> bool:
    return any(word in ref.path for word in ISO_TOOL_IMAGES)
