"""The CanvOS checkout: clone, update and pin it, and read the facts the build needs from it.

The only module that uses GitPython (imported inside functions so `--help` stays quick). Rules:
- a clone happens in a staging directory beside the target and is renamed into place, so a half-made
  clone never looks like a checkout;
- local edits are never discarded unless the caller says so; a directory that is not our checkout
  is reported and left alone;
- credentials in the URL never reach the disk (the remote is stored scrubbed and every fetch passes
  the full URL) nor any message (everything git says goes through `_clean`).
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.canvos.contract import BuildContract, read_contract
from edgeforge_ext.errors import CheckoutError
from edgeforge_ext.secrets import quoted, scrub_url, scrub_url_secrets, url_credentials

# Files edgeforge-ext itself writes into the checkout: never reported as local edits. (The CA files of
# build.ca_certs: certs/edgeforge-*.crt on CanvOS v4.5+, sc.crt for PROXY_CERT_PATH on v4.4.x.)
OWN_FILES: tuple[str, ...] = (".arg", "user-data", "build/", "sc.crt", "certs/edgeforge-*")
LATEST = "latest"
_RELEASE = re.compile(r"^v?\d+(?:\.\d+)*$")
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
_PE_VERSION = re.compile(r"^ARG\s+(?:--global\s+)?PE_VERSION=\s*[\"']?([^\s\"']*)", re.MULTILINE)
# No prompts (a CI job would hang), and messages in English so they can be shortened reliably.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"}


@dataclass(frozen=True)
class CanvosFacts:
    """What the rest of the tool needs from a checkout, read from the checked-out commit."""

    path: Path
    url: str  # credentials scrubbed
    ref: str  # as asked ("latest", a tag, branch or SHA)
    tag: str | None  # the tag the ref resolved to, if any
    sha: str
    pe_version: str  # from the Earthfile's `ARG PE_VERSION=` line
    describe: str  # git describe --tags
    k8s_versions: dict[str, list[str]] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    arg_defaults: dict[str, str] = field(default_factory=dict)
    contract: BuildContract | None = None  # what the commit's Earthfile, earthly.sh, .arg.template say
    modified: tuple[str, ...] = ()  # local edits, excluding OWN_FILES
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """CLI.md's checkout JSON (plus tag and warnings)."""
        return {
            "url": self.url, "ref": self.ref, "sha": self.sha, "pe_version": self.pe_version,
            "describe": self.describe, "path": str(self.path), "modified": list(self.modified),
            "tag": self.tag, "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------- credentials


# git runs this when the server asks for credentials, with "Username for '...'" or "Password for '...'"
# as its argument; the answers are the files beside it. `cat` gets a file name, never the secret.
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) exec cat "${0%/*}/username" ;;
  *) exec cat "${0%/*}/password" ;;
esac
"""


@contextmanager
def git_transport(url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The URL git is given, and the environment it runs with, while the block runs.

    A private fork's `https://user:token@host/...` never goes into git's argv (visible in `ps` to every
    user), its environment (/proc/PID/environ) or the checkout's config: git gets the scrubbed URL and
    GIT_ASKPASS, a small program that answers git's user name and password prompts from 0600 files in a
    private (0700) temporary directory, removed when the block ends. credential.helper is emptied for
    these calls so no helper of the user's stores the token. Other URLs are passed as given."""
    found = url_credentials(url)
    if found is None or not url.lower().startswith(("http://", "https://")):
        yield url, {}
        return
    user, password = found[0], found[1] or ""
    from edgeforge_ext.fsutil import private_dir, write_private

    with private_dir("git") as folder:  # mode 0700
        write_private(folder / "username", user, 0o600)
        write_private(folder / "password", password, 0o600)
        write_private(folder / "askpass", _ASKPASS, 0o700)
        yield scrub_url(url), {"GIT_ASKPASS": str(folder / "askpass"), "GIT_TERMINAL_PROMPT": "0",
                               "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.helper",
                               "GIT_CONFIG_VALUE_0": ""}


def _clean(text: str, url: str = "") -> str:
    return scrub_url_secrets(text, url)


def _git_message(exc: Exception, url: str = "") -> str:
    """One readable line from a GitCommandError: the fatal/error lines of git's stderr."""
    raw = str(getattr(exc, "stderr", "") or exc)
    raw = raw.replace("\n  stderr: '", "\n").rstrip("'\n ")
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.lower().startswith(("fatal:", "error:"))] or lines[-1:]
    message = "; ".join(ln.split(":", 1)[1].strip() if ln.lower().startswith(("fatal:", "error:")) else ln
                        for ln in picked)
    return _clean(message or f"git exited with status {getattr(exc, 'status', '?')}", url)


# ---------------------------------------------------------------- tags and versions


def version_key(tag: str) -> tuple[int, ...]:
    return tuple(int(p) for p in tag.lstrip("v").split("."))


def latest_release(tags: Iterable[str]) -> str | None:
    """The highest release tag (no pre-release suffix), compared as versions: v4.10.0 > v4.9.38."""
    releases = [t for t in tags if _RELEASE.match(t)]
    return max(releases, key=version_key) if releases else None


def _tag_at(tags: dict[str, str], sha: str) -> str | None:
    at = [t for t, s in tags.items() if s == sha]
    if not at:
        return None
    releases = [t for t in at if _RELEASE.match(t)]
    return max(releases, key=version_key) if releases else sorted(at)[0]


def _missing(ref: str, tags: dict[str, str], url: str) -> CheckoutError:
    close = difflib.get_close_matches(ref, list(tags), n=3, cutoff=0.6)
    if close:
        where = f"closest tags: {', '.join(close)}"
    else:
        newest = sorted((t for t in tags if _RELEASE.match(t)), key=version_key, reverse=True)[:3]
        where = f"newest release tags: {', '.join(newest)}" if newest else "the repository has no tags"
    return CheckoutError(f"ref {quoted(ref)} not found in {scrub_url(url)} ({where})",
                         hint=f"list the tags with: git ls-remote --tags {scrub_url(url)}")


def _resolve(ref: str, tags: dict[str, str], branches: dict[str, str], url: str,
             lookup_sha: Any = None) -> tuple[str | None, str]:
    """(tag, sha) for `ref` among known refs; `lookup_sha(prefix)` finds commits by (abbreviated) SHA."""
    if ref == LATEST:
        tag = latest_release(tags)
        if tag is None:
            raise CheckoutError(f"{scrub_url(url)} has no release tag (vX.Y.Z) for --ref latest",
                                hint="give a tag, branch or SHA with --ref")
        return tag, tags[tag]
    if ref in tags:
        return ref, tags[ref]
    if ref in branches:
        return None, branches[ref]
    if _HEX.match(ref) and lookup_sha is not None:
        sha = lookup_sha(ref.lower())
        if sha:
            return _tag_at(tags, sha), sha
    raise _missing(ref, tags, url)


# ---------------------------------------------------------------- git plumbing


def _gitpython() -> Any:
    """GitPython, imported on first use. It refuses to import without a git executable; that is a
    host problem to say in one line (exit 4), not a crash with GitPython's page of advice."""
    try:
        import git
    except ImportError as exc:
        raise CheckoutError(
            f"cannot run git: {str(exc).splitlines()[0]}",
            hint="install git (e.g. apt-get install git), or set GIT_PYTHON_GIT_EXECUTABLE to its path",
        ) from None
    return git


def _git(cwd: Path | None) -> Any:
    git = _gitpython()

    g = git.Git(str(cwd) if cwd is not None else None)
    g.update_environment(**_GIT_ENV)
    if cwd is not None:
        # A broken .git must not make git walk up into an enclosing repository (a project that
        # keeps its work directory inside its own checkout).
        g.update_environment(GIT_CEILING_DIRECTORIES=str(Path(cwd).absolute().parent))
    return g


@contextmanager
def _git_errors(what: str, url: str = "") -> Iterator[None]:
    """Turn a git failure into a CheckoutError with one scrubbed line (no chained traceback:
    GitPython's exception text holds the command line, URL and all)."""
    git = _gitpython()

    try:
        yield
    except git.exc.GitCommandError as exc:
        raise CheckoutError(f"{what}: {_git_message(exc, url)}") from None


def _local_refs(g: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(tags -> peeled commit SHA, origin branches -> SHA), read in one git call."""
    out = g.for_each_ref("--format=%(refname)%00%(objectname)%00%(*objectname)%00%(objecttype)",
                         "refs/tags", "refs/remotes/origin")
    tags: dict[str, str] = {}
    branches: dict[str, str] = {}
    for line in out.splitlines():
        name, obj, peeled, kind = [*line.split("\0"), "", "", ""][:4]
        if name.startswith("refs/tags/"):
            if kind == "commit" or peeled:
                tags[name[len("refs/tags/"):]] = peeled or obj
        elif name.startswith("refs/remotes/origin/") and not name.endswith("/HEAD"):
            branches[name[len("refs/remotes/origin/"):]] = obj
    return tags, branches


def _commit_of(g: Any, prefix: str) -> str | None:
    git = _gitpython()

    try:
        return str(g.rev_parse("--verify", "--quiet", f"{prefix}^{{commit}}")).strip() or None
    except git.exc.GitCommandError:
        return None


def _fetch(g: Any, remote: str, env: dict[str, str], *, as_process: bool = False) -> Any:
    """One fetch: branches into origin/*, every tag (moved tags follow upstream). `remote` and `env`
    come from git_transport, whose block must outlive the fetch."""
    # Not --quiet: its report of moved refs is how _fetch_concurrently knows whether refs changed.
    proc = g.fetch("--tags", "--force", remote, "+refs/heads/*:refs/remotes/origin/*",
                   as_process=True, env=env or None)
    return proc if as_process else _finish_git(proc)


def _finish_git(proc: Any) -> str:
    """Wait for a git process started with as_process; on Ctrl-C or SIGTERM (KeyboardInterrupt here) kill
    it first, so it never outlives us writing into a staging directory we are removing."""
    try:
        said = proc.proc.stderr.read() if proc.proc is not None and proc.proc.stderr else b""
        proc.wait(stderr=said)
        return said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    except BaseException:
        _kill(proc)
        raise


def _kill(proc: Any) -> None:
    child = getattr(proc, "proc", None)
    if child is not None and child.poll() is None:
        child.kill()
        child.wait()


@dataclass(frozen=True)
class _Status:
    head: str  # the checked-out commit
    edited: tuple[str, ...]  # tracked files changed, added or deleted
    untracked: tuple[str, ...]

    @property
    def modified(self) -> tuple[str, ...]:
        return tuple(sorted({*self.edited, *self.untracked}))


def _own(name: str) -> bool:
    return any(name == own or (own.endswith("/") and name.startswith(own))
               or (own.endswith("*") and name.startswith(own[:-1])) for own in OWN_FILES)


def _status(g: Any) -> _Status:
    """HEAD and the local edits in one git call (porcelain v2 carries the HEAD commit); OWN_FILES
    left out. Fails on a broken repository, which is how _inspect finds one."""
    out = g.status("--porcelain=v2", "-z", "--branch", "--untracked-files=all", strip_newline_in_stdout=False)
    head = ""
    edited: list[str] = []
    untracked: list[str] = []
    items = iter(out.split("\0"))
    for item in items:
        if item.startswith("# branch.oid "):
            head = item.split()[2]
        elif item.startswith(("1 ", "u ")):
            edited.append(item.split(" ", 8 if item[0] == "1" else 10)[-1])
        elif item.startswith("2 "):
            edited.append(item.split(" ", 9)[-1])
            next(items, None)  # a rename is followed by its old name
        elif item.startswith("? "):
            untracked.append(item[2:])
    if not re.fullmatch(r"[0-9a-f]{40,64}", head):
        git = _gitpython()

        raise git.exc.GitCommandError(["git", "status"], 128, "fatal: the checkout has no commit checked out")
    return _Status(head, tuple(n for n in edited if not _own(n)), tuple(n for n in untracked if not _own(n)))


def same_url(a: str, b: str) -> bool:
    """Two remote URLs name the same repository (ignoring credentials, a trailing / or .git; a local
    path and its file:// URL are the same repository, as git reads them: percent-decoded, host empty or
    localhost)."""

    def norm(u: str) -> str:
        u = scrub_url(u).strip()
        if u[:7].lower() == "file://":
            from urllib.parse import unquote, urlsplit

            parts = urlsplit(u)
            if parts.netloc.lower() in ("", "localhost"):
                u = unquote(parts.path)
        u = u.rstrip("/")
        return u[:-4] if u.endswith(".git") else u

    return norm(a) == norm(b)


def origin_url(path: Path) -> str:
    """The `origin` remote's URL of the git checkout at `path` ("" without one), read in-process (no git
    call). A checkout that cannot be read is a CheckoutError (exit 4), left untouched."""
    git = _gitpython()

    try:
        return str(git.Repo(path).config_reader("repository").get_value('remote "origin"', "url", default=""))
    except (git.exc.GitError, ValueError, OSError) as exc:
        raise _broken(path, exc) from None


def checkout_of(origin: str) -> str:
    """What a checkout is, said by its origin URL (credentials removed), for messages."""
    return f"a checkout of {scrub_url(origin)}" if origin else "a git checkout without an 'origin' remote"


# ---------------------------------------------------------------- the checkout


def _inspect(path: Path, url: str) -> bool:
    """True when `path` is our checkout of `url`; False when it is absent or an empty directory.
    Anything else is reported (CheckoutError) and left as it is. Runs no git process."""
    left = "it was left untouched"
    if not path.exists() and not path.is_symlink():
        return False
    if not path.is_dir():
        raise CheckoutError(f"{path} exists and is not a directory; {left}",
                            hint="move it away or choose another --workdir")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return False
    if ".git" not in entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise CheckoutError(f"{path} is not a git checkout (it holds {shown}); {left}",
                            hint="move it away or choose another --workdir")
    origin = origin_url(path)  # read in-process: spares a git call on every run
    if not same_url(origin, url):
        found = checkout_of(origin)
        raise CheckoutError(f"{path} is {found}, not of {scrub_url(url)}; {left}",
                            hint="use another --workdir, or move the directory away to clone there")
    return True


def _broken(path: Path, exc: Exception) -> CheckoutError:
    return CheckoutError(f"{path} holds a broken git checkout ({_git_message(exc)}); it was left untouched",
                         hint="move it away (or repair it) and run checkout again")


def _fetch_concurrently(g: Any, path: Path,
                       url: str) -> tuple[_Status, tuple[dict[str, str], dict[str, str]], str]:
    """Fetch, and meanwhile read the status and the refs (they touch different files).

    Returns (status, (tags, branches), the fetch's error line or ""). git fetch prints nothing when
    no ref moved; when it printed anything the refs are read again after it."""
    git = _gitpython()

    with git_transport(url) as (remote, env):
        fetch = _fetch(g, remote, env, as_process=True)
        try:
            status = _status(g)
            refs = _local_refs(g)
        except BaseException as exc:
            _kill(fetch)
            if isinstance(exc, git.exc.GitCommandError):
                raise _broken(path, exc) from None
            raise
        try:
            said = _finish_git(fetch)
            fetch_error = ""
        except git.exc.GitCommandError as exc:
            said, fetch_error = "", _git_message(exc, url)
    if said.strip() and not fetch_error:
        with _git_errors(f"could not read the refs of {path}", url):
            refs = _local_refs(g)
    return status, refs, fetch_error


def remove_stale_staging(path: Path) -> list[Path]:
    """Staging directories of clones killed hard (kill -9) beside the checkout `path`. The caller holds
    the work-directory lock, so no other run is cloning there: every one is a leftover."""
    removed = []
    for stale in path.parent.glob(f".{path.name}.staging-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def _clone(url: str, ref: str, path: Path) -> tuple[str | None, str, dict[str, str]]:
    """Clone into a staging directory beside `path`, check out `ref`, rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.staging-", dir=path.parent))
    try:
        g = _git(staging)
        with _git_errors(f"could not clone {scrub_url(url)}", url):
            g.init("--quiet")
            g.remote("add", "origin", scrub_url(url))  # the full URL (credentials) stays off the disk
            with git_transport(url) as (remote, env):
                _fetch(g, remote, env)
        with _git_errors(f"could not check out {ref}", url):
            tags, branches = _local_refs(g)
            tag, sha = _resolve(ref, tags, branches, url, lambda p: _commit_of(g, p))
            g.checkout("--quiet", "--detach", sha)
        staging.chmod(0o755)  # mkdtemp made it private; the checkout is an ordinary directory
        try:
            staging.rename(path)  # atomic; also replaces an empty directory
        except OSError as exc:
            raise CheckoutError(f"could not move the new clone into {path}: {exc.strerror}") from None
        return tag, sha, tags
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # our own staging directory, never the target
        raise


def _update(url: str, ref: str, path: Path,
            discard_changes: bool) -> tuple[str | None, str, dict[str, str], list[str], _Status | None]:
    """Fetch and move an existing checkout to `ref`; returns (tag, sha, tags, warnings, the status
    when it still holds, i.e. HEAD did not move)."""
    git = _gitpython()

    g = _git(path)
    warnings: list[str] = []
    status, (tags, branches), fetch_error = _fetch_concurrently(g, path, url)
    try:
        tag, sha = _resolve(ref, tags, branches, url, lambda p: _commit_of(g, p))
    except CheckoutError as exc:
        if fetch_error:
            raise CheckoutError(f"could not fetch from {scrub_url(url)}: {fetch_error}",
                                details=[f"and the checkout has no {quoted(ref)}: {exc.message}"]) from None
        raise
    if fetch_error:
        what = "the newest tag in the local checkout" if ref == LATEST else "the local copy"
        warnings.append(f"could not fetch from {scrub_url(url)} ({fetch_error}); using {what}: "
                        f"{tag or ref} at {sha[:12]}")

    head, changed = status.head, list(status.edited)
    if head == sha and (not discard_changes or not changed):
        return tag, sha, tags, warnings, status  # already there: local edits stay as they are
    if changed and head != sha and not discard_changes:
        raise CheckoutError(
            f"local edits in {path} would be lost by moving from {head[:12]} to {ref} ({sha[:12]})",
            details=changed,
            hint="commit or copy them elsewhere, or pass --discard-changes to throw them away",
        )
    args = ["--quiet", "--detach"] + (["--force"] if discard_changes else []) + [sha]
    try:
        g.checkout(*args)
    except git.exc.GitCommandError as exc:
        raise CheckoutError(f"could not check out {ref} in {path}: {_git_message(exc, url)}",
                            details=_overwritten(exc)) from None
    if discard_changes and changed:
        warnings.append(f"discarded local edits in {len(changed)} file(s): {', '.join(changed)}")
    return tag, sha, tags, warnings, None


def _overwritten(exc: Exception) -> list[str]:
    """The untracked files git refuses to overwrite, from its error text."""
    text = str(getattr(exc, "stderr", ""))
    return [ln.strip() for ln in text.splitlines() if ln.startswith("\t")]


def checkout(url: str, ref: str, path: Path, *, discard_changes: bool = False) -> CanvosFacts:
    """Clone `url` into `path` or update it, move it to `ref`, and read its facts.

    The caller holds the work-directory lock (workdir_lock.workdir_lock)."""
    path = Path(path).expanduser().absolute()
    ref = ref.strip() or LATEST
    status: _Status | None = None
    if _inspect(path, url):
        tag, sha, tags, warnings, status = _update(url, ref, path, discard_changes)
    else:
        tag, sha, tags = _clone(url, ref, path)
        warnings = []
    return _facts(path, url, ref, tag, sha, tags, warnings, status)


def read_facts(path: Path, url: str = "", ref: str = "") -> CanvosFacts:
    """The facts of an existing checkout at its current commit (no network)."""
    git = _gitpython()

    path = Path(path).expanduser().absolute()
    g = _git(path)
    try:
        if not (path / ".git").exists():
            raise git.exc.GitCommandError(["git"], 128, "fatal: not a git repository")
        sha = str(g.rev_parse("--verify", "HEAD^{commit}")).strip()
        origin = url or g.config("--get", "remote.origin.url").strip()
        tags, _ = _local_refs(g)
    except git.exc.GitCommandError as exc:
        raise CheckoutError(f"{path} is not a CanvOS checkout ({_git_message(exc)})",
                            hint="run `edgeforge-ext checkout` first") from None
    tag = ref if ref in tags and tags[ref] == sha else _tag_at(tags, sha)
    return _facts(path, origin, ref or tag or sha, tag, sha, tags, [])


# ---------------------------------------------------------------- facts


def _facts(path: Path, url: str, ref: str, tag: str | None, sha: str, tags: dict[str, str],
           warnings: list[str], status: _Status | None = None) -> CanvosFacts:
    git = _gitpython()

    g = _git(path)
    with _git_errors(f"could not read the checkout {path}", url):
        status = status or _status(g)
        edited = set(status.edited)
        untracked = set(status.untracked)

        def read(name: str) -> str | None:
            """A file as committed: from the work tree when unedited (no git call), else from git."""
            if name in untracked:
                return None  # made by the user, not part of the commit
            if name not in edited:
                try:
                    return (path / name).read_text(encoding="utf-8")
                except FileNotFoundError:
                    return None
            try:
                return str(g.show(f"{sha}:{name}", strip_newline_in_stdout=False))
            except git.exc.GitCommandError:  # not in the commit
                return None

        earthfile = read("Earthfile")
        if earthfile is None:
            raise CheckoutError(f"{path} at {sha[:12]} has no Earthfile: is {scrub_url(url)} CanvOS?")
        # At a tag's commit `git describe --tags` prints a tag: the one asked for, or the only one
        # there (spares a git call); anything else asks git.
        at = [t for t, s in tags.items() if s == sha]
        if tag and tags.get(tag) == sha:
            describe = tag
        elif len(at) == 1:
            describe = at[0]
        else:
            describe = str(g.describe("--tags", "--always", sha)).strip()
        k8s, k8s_note = _k8s_versions(read("k8s_version.json"))
        template = read(".arg.template") or ""
        contract = read_contract(lambda name: earthfile if name == "Earthfile" else read(name))
    notes = list(warnings)
    match = _PE_VERSION.search(earthfile)
    pe_version = match.group(1) if match else ""
    if not pe_version:
        notes.append("the Earthfile has no `ARG PE_VERSION=` line; pass PE_VERSION explicitly")
    elif tag and pe_version != tag:
        notes.append(f"the Earthfile's PE_VERSION is {pe_version}, not the tag {tag}: "
                     f"images will be tagged {pe_version}")
    notes.extend(k8s_note)
    notes.extend(contract.script.warnings if contract.script else
                 ["the checkout has no earthly.sh: the Earthly image and certificate handling are edgeforge-ext's "
                  "defaults"])
    return CanvosFacts(
        path=path, url=scrub_url(url), ref=ref, tag=tag, sha=sha, pe_version=pe_version,
        describe=describe, k8s_versions=k8s, targets=contract.earthfile.targets,
        arg_defaults=parse_arg_file(template), contract=contract,
        modified=status.modified, warnings=tuple(_clean(n, url) for n in notes),
    )


def _k8s_versions(text: str | None) -> tuple[dict[str, list[str]], list[str]]:
    if text is None:
        return {}, ["the checkout has no k8s_version.json"]
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, [f"k8s_version.json is not valid JSON: {exc}"]
    if not isinstance(data, dict):
        return {}, ["k8s_version.json is not a JSON object"]
    return {str(k): [str(v) for v in vs] for k, vs in data.items() if isinstance(vs, list)}, []


def parse_arg_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines of an .arg file; comments and blank lines skipped, quotes removed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# ---------------------------------------------------------------- remote only (plan)


def resolve_remote(url: str, ref: str) -> tuple[str | None, str]:
    """(tag or None, sha) of `ref` in the remote, by `git ls-remote`: no local side effects. `latest` is
    the rule checkout uses (latest_release), on the remote's tags only (`ls-remote --tags`)."""
    g = _git(None)
    ref = ref.strip() or LATEST
    which = ("--tags",) if ref == LATEST else ("--tags", "--heads")
    with git_transport(url) as (remote, env), _git_errors(f"could not list the refs of {scrub_url(url)}", url):
        out = str(g.ls_remote(*which, remote, env=env or None))
    tags: dict[str, str] = {}
    branches: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name.startswith("refs/tags/"):
            short = name[len("refs/tags/"):]
            if short.endswith("^{}"):
                tags[short[:-3]] = sha  # the peeled commit wins over the tag object
            else:
                tags.setdefault(short, sha)
        elif name.startswith("refs/heads/"):
            branches[name[len("refs/heads/"):]] = sha

    def lookup(prefix: str) -> str | None:
        if len(prefix) == 40:
            return prefix
        known = {s for s in (*tags.values(), *branches.values()) if s.startswith(prefix)}
        return known.pop() if len(known) == 1 else None

    return _resolve(ref, tags, branches, url, lookup)


__all__ = [
    "LATEST", "OWN_FILES", "CanvosFacts", "checkout", "checkout_of", "latest_release", "origin_url", "parse_arg_file",
    "read_facts", "resolve_remote", "same_url", "scrub_url", "version_key",
]
