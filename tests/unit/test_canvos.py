"""canvos.checkout against real git repositories served over file:// (tests/canvos_fixture.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeforge_ext.canvos import repo as canvos
from edgeforge_ext.errors import CheckoutError
from edgeforge_ext.secrets import scrub_url
from tests.canvos_fixture import K8S_VERSIONS, K8S_VERSIONS_OLD, TARGETS, CanvosRepo, git
from tests.conftest import free_port


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD")


def staging_dirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f".{path.name}.staging-*"))


def go_offline(repo: CanvosRepo) -> None:
    """The remote URL stops resolving, as with no network (the bare repository moves away)."""
    repo.bare.rename(repo.bare.with_name("moved-away.git"))


# ---------------------------------------------------------------- clone and facts


def test_clone_at_tag_reports_facts_of_that_commit(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "work" / "CanvOS"
    facts = canvos.checkout(canvos_repo.url, "v4.10.0", path)

    assert facts.sha == canvos_repo.tags["v4.10.0"] == head(path)
    assert (facts.ref, facts.tag, facts.describe) == ("v4.10.0", "v4.10.0", "v4.10.0")
    assert facts.pe_version == "v4.9.21"  # the Earthfile, not the tag
    assert any("v4.9.21" in w and "v4.10.0" in w for w in facts.warnings)
    assert facts.k8s_versions == K8S_VERSIONS
    assert set(TARGETS) <= set(facts.targets)
    assert facts.arg_defaults["ISO_NAME"] == "palette-edge-installer"
    assert facts.arg_defaults["IMAGE_REPO"] == "$OS_DISTRIBUTION"
    assert facts.arg_defaults["HTTPS_PROXY"] == ""
    assert facts.modified == ()
    assert facts.url == canvos_repo.url and facts.path == path
    # v4.10.0's first line, as upstream: VERSION --arg-scope-and-set --shell-out-anywhere 0.6
    assert (path / "Earthfile").read_text().splitlines()[0] == "VERSION --arg-scope-and-set --shell-out-anywhere 0.6"
    assert staging_dirs(path) == []
    assert git(path, "config", "remote.origin.url") == canvos_repo.url


def test_tag_whose_pe_version_matches_gives_no_warning(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    facts = canvos.checkout(canvos_repo.url, "v4.9.38", tmp_path / "CanvOS")
    assert (facts.tag, facts.pe_version, facts.describe) == ("v4.9.38", "v4.9.38", "v4.9.38")
    assert facts.warnings == ()
    assert facts.k8s_versions["k3s"] == K8S_VERSIONS_OLD["k3s"]


def test_latest_is_highest_release_tag_compared_as_versions(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    facts = canvos.checkout(canvos_repo.url, "latest", path)
    assert (facts.ref, facts.tag, facts.sha) == ("latest", "v4.10.0", canvos_repo.tags["v4.10.0"])

    canvos_repo.add_tag("v4.9.40")  # newer in time, lower as a version
    canvos_repo.add_tag("v4.11.0-rc.1")
    assert canvos.checkout(canvos_repo.url, "latest", path).tag == "v4.10.0"

    canvos_repo.add_tag("v4.10.2")
    facts = canvos.checkout(canvos_repo.url, "latest", path)
    assert (facts.tag, facts.sha, facts.pe_version) == ("v4.10.2", canvos_repo.tags["v4.10.2"], "v4.10.2")
    assert head(path) == canvos_repo.tags["v4.10.2"]


def test_latest_release_helper() -> None:
    assert canvos.latest_release(["v4.9.38", "v4.10.0", "v4.10.1-rc.1", "v4.9.39-rc.3"]) == "v4.10.0"
    assert canvos.latest_release(["v4.4.12", "v4.9.38"]) == "v4.9.38"
    assert canvos.latest_release(["v1.0.0-rc.1", "main"]) is None


def test_update_to_a_new_tag_reads_facts_of_the_new_commit(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    canvos.checkout(canvos_repo.url, "v4.9.38", path)
    new_k3s = ["1.31.6", "1.32.3", "1.33.1"]
    sha = canvos_repo.add_tag("v4.10.3", files={"k8s_version.json": '{"k3s": ["1.31.6", "1.32.3", "1.33.1"]}'})

    facts = canvos.checkout(canvos_repo.url, "v4.10.3", path)
    assert (facts.sha, facts.tag, facts.pe_version) == (sha, "v4.10.3", "v4.10.3")
    assert facts.k8s_versions == {"k3s": new_k3s}
    assert head(path) == sha


def test_branch_and_sha_refs(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    facts = canvos.checkout(canvos_repo.url, "main", path)
    assert (facts.tag, facts.sha, facts.pe_version) == (None, canvos_repo.main, "v4.10.0-rc.2")
    assert facts.describe.startswith("v4.10.1-rc.1-1-g")

    short = canvos_repo.tags["v4.9.38"][:10]
    facts = canvos.checkout(canvos_repo.url, short, path)
    assert (facts.ref, facts.tag, facts.sha) == (short, "v4.9.38", canvos_repo.tags["v4.9.38"])

    moved = canvos_repo.commit("main moves on")
    assert canvos.checkout(canvos_repo.url, "main", path).sha == moved


def test_missing_ref_names_the_closest_tags(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    with pytest.raises(CheckoutError) as err:
        canvos.checkout(canvos_repo.url, "v4.10.00", path)
    assert err.value.exit_code == 4
    assert "'v4.10.00' not found" in err.value.message and "v4.10.0" in err.value.message
    assert not path.exists() and staging_dirs(path) == []  # a failed clone leaves nothing

    canvos.checkout(canvos_repo.url, "v4.9.38", path)
    with pytest.raises(CheckoutError, match=r"closest tags: .*v4\.9\.38"):
        canvos.checkout(canvos_repo.url, "v4.9.83", path)
    assert head(path) == canvos_repo.tags["v4.9.38"]


# ---------------------------------------------------------------- local edits


def test_local_edits_kept_on_same_ref_and_refused_on_another(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    canvos.checkout(canvos_repo.url, "v4.10.0", path)
    (path / "Dockerfile").write_text("FROM my-own-base\n")
    (path / "overlay/files/etc.conf").write_text("mine\n")
    for own in (".arg", "user-data"):  # written by edgeforge-ext: not local edits
        (path / own).write_text("x\n")
    (path / "build").mkdir()
    (path / "build/installer.iso").write_text("iso\n")

    facts = canvos.checkout(canvos_repo.url, "v4.10.0", path)
    assert facts.modified == ("Dockerfile", "overlay/files/etc.conf")
    assert (path / "Dockerfile").read_text() == "FROM my-own-base\n"

    with pytest.raises(CheckoutError) as err:
        canvos.checkout(canvos_repo.url, "v4.9.38", path)
    assert err.value.exit_code == 4
    assert err.value.details == ["Dockerfile"]
    assert "--discard-changes" in (err.value.hint or "")
    assert head(path) == canvos_repo.tags["v4.10.0"]
    assert (path / "Dockerfile").read_text() == "FROM my-own-base\n"

    facts = canvos.checkout(canvos_repo.url, "v4.9.38", path, discard_changes=True)
    assert facts.sha == canvos_repo.tags["v4.9.38"] == head(path)
    assert "my-own-base" not in (path / "Dockerfile").read_text()
    assert facts.modified == ("overlay/files/etc.conf",)  # untracked files are never deleted
    assert (path / ".arg").exists() and (path / "build/installer.iso").exists()
    assert any("discarded" in w and "Dockerfile" in w for w in facts.warnings)


def test_only_own_files_changed_does_not_block_a_switch(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    canvos.checkout(canvos_repo.url, "v4.10.0", path)
    (path / ".arg").write_text("CUSTOM_TAG=x\n")
    (path / "user-data").write_text("#cloud-config\n")
    facts = canvos.checkout(canvos_repo.url, "v4.9.38", path)
    assert facts.sha == canvos_repo.tags["v4.9.38"] and facts.modified == ()
    assert (path / ".arg").read_text() == "CUSTOM_TAG=x\n"


# ---------------------------------------------------------------- offline


def test_offline_with_cached_checkout_continues_with_warning(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    canvos.checkout(canvos_repo.url, "v4.10.0", path)
    go_offline(canvos_repo)

    facts = canvos.checkout(canvos_repo.url, "v4.10.0", path)
    assert facts.sha == canvos_repo.tags["v4.10.0"]
    assert any("could not fetch" in w for w in facts.warnings)

    facts = canvos.checkout(canvos_repo.url, "v4.9.38", path)  # present locally: fine
    assert facts.sha == canvos_repo.tags["v4.9.38"] == head(path)
    assert any("using the local copy" in w for w in facts.warnings)

    with pytest.raises(CheckoutError) as err:
        canvos.checkout(canvos_repo.url, "v9.9.9", path)
    assert "could not fetch" in err.value.message
    assert head(path) == canvos_repo.tags["v4.9.38"]


def test_offline_without_checkout_fails_in_one_line(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    go_offline(canvos_repo)
    path = tmp_path / "CanvOS"
    with pytest.raises(CheckoutError) as err:
        canvos.checkout(canvos_repo.url, "latest", path)
    assert err.value.exit_code == 4
    assert err.value.message.startswith(f"could not clone {canvos_repo.url}: ")
    assert "\n" not in err.value.message and "does not appear to be a git repository" in err.value.message
    assert not path.exists() and staging_dirs(path) == []


# ---------------------------------------------------------------- credentials


@pytest.mark.parametrize(("text", "expected"), [
    ("https://user:hunter2@github.com/acme/CanvOS.git", "https://github.com/acme/CanvOS.git"),
    ("https://ghp_T0KEN@github.com/acme/CanvOS", "https://github.com/acme/CanvOS"),
    ("fatal: unable to access 'http://u:p%40ss@10.0.0.1:8080/x/': refused",
     "fatal: unable to access 'http://10.0.0.1:8080/x/': refused"),
    ("two http://a:b@h1/x and ssh://git:pw@h2:22/y", "two http://h1/x and ssh://h2:22/y"),
    ("https://github.com/spectrocloud/CanvOS.git", "https://github.com/spectrocloud/CanvOS.git"),
    ("git@github.com:acme/CanvOS.git", "git@github.com:acme/CanvOS.git"),  # no secret in scp-like form
])
def test_scrub_url(text: str, expected: str) -> None:
    assert scrub_url(text) == expected


@pytest.mark.parametrize(("a", "b", "same"), [
    ("/srv/git/CanvOS.git", "file:///srv/git/CanvOS.git", True),  # git reads both as the same repository
    ("/srv/git/CanvOS", "file://localhost/srv/git/CanvOS.git/", True),
    ("/srv/my git/CanvOS.git", "file:///srv/my%20git/CanvOS.git", True),  # as Path.as_uri() writes it
    ("https://u:tok@github.com/acme/CanvOS.git", "https://github.com/acme/CanvOS", True),
    ("file://otherhost/srv/git/CanvOS.git", "/srv/git/CanvOS.git", False),
    ("https://github.com/srv/git/CanvOS.git", "/srv/git/CanvOS.git", False),
    ("https://github.com/spectrocloud/CanvOS.git", "https://github.com/acme/CanvOS.git", False),
])
def test_same_url(a: str, b: str, same: bool) -> None:
    assert canvos.same_url(a, b) is same and canvos.same_url(b, a) is same


def test_clone_failure_with_credentials_is_scrubbed(tmp_path: Path) -> None:
    url = f"http://builder:hunter2@127.0.0.1:{free_port()}/acme/CanvOS.git"  # nothing listens there
    with pytest.raises(CheckoutError) as err:
        canvos.checkout(url, "latest", tmp_path / "CanvOS")
    text = f"{err.value.message} {err.value.hint} {err.value.details}"
    assert "hunter2" not in text and "builder" not in text
    assert "127.0.0.1" in err.value.message and "\n" not in err.value.message
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no git command line chained
    with pytest.raises(CheckoutError) as err2:
        canvos.resolve_remote(url, "latest")
    assert "hunter2" not in err2.value.message


def test_credentials_never_reach_disk_or_warnings(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    canvos.checkout(canvos_repo.url, "v4.10.0", path)
    port = free_port()
    plain = f"http://127.0.0.1:{port}/acme/CanvOS.git"
    git(path, "remote", "set-url", "origin", plain)  # as if cloned from a private fork
    facts = canvos.checkout(f"http://builder:hunter2@127.0.0.1:{port}/acme/CanvOS.git", "v4.10.0", path)
    assert facts.url == plain
    assert facts.warnings and all("hunter2" not in w for w in facts.warnings)
    assert "hunter2" not in (path / ".git/config").read_text()


# ---------------------------------------------------------------- what is at the path


def test_half_made_clone_never_looks_like_a_checkout(tmp_path: Path, canvos_repo: CanvosRepo,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "CanvOS"

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(canvos, "_local_refs", interrupted)  # Ctrl-C after the fetch, before the rename
        with pytest.raises(KeyboardInterrupt):
            canvos.checkout(canvos_repo.url, "latest", path)
    assert not path.exists() and staging_dirs(path) == []

    old = tmp_path / ".CanvOS.staging-old"  # left by a run killed hard
    old.mkdir()
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    fresh = tmp_path / ".CanvOS.staging-fresh"  # killed by kill -9 a moment ago
    (fresh / "objects").mkdir(parents=True)
    # checkout runs under the work-directory lock: no other clone can be in progress, so both go.
    canvos.checkout(canvos_repo.url, "latest", path)
    assert staging_dirs(path) == []


def test_empty_directory_at_path_is_cloned_into(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    path.mkdir()
    assert canvos.checkout(canvos_repo.url, "v4.9.38", path).sha == head(path)


def test_foreign_directory_is_reported_and_left_alone(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    path.mkdir()
    (path / "notes.txt").write_text("mine\n")
    with pytest.raises(CheckoutError, match=r"is not a git checkout .*notes\.txt") as err:
        canvos.checkout(canvos_repo.url, "latest", path)
    assert err.value.exit_code == 4
    assert sorted(p.name for p in path.iterdir()) == ["notes.txt"]

    other = tmp_path / "other"
    other.write_text("a file\n")
    with pytest.raises(CheckoutError, match="not a directory"):
        canvos.checkout(canvos_repo.url, "latest", other)
    assert other.read_text() == "a file\n"


def test_checkout_of_another_repository_is_left_alone(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    path = tmp_path / "CanvOS"
    git(tmp_path, "clone", "-q", canvos_repo.url, "CanvOS")
    git(path, "remote", "set-url", "origin", "https://u:hunter2@example.invalid/someone/else.git")
    before = head(path)
    with pytest.raises(CheckoutError) as err:
        canvos.checkout(canvos_repo.url, "v4.9.38", path)
    assert "https://example.invalid/someone/else.git" in err.value.message
    assert "hunter2" not in err.value.message
    assert head(path) == before


def test_broken_git_directory_is_reported_not_its_parent(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    git(tmp_path, "init", "-q")  # the work directory lives inside a project's own repository
    path = tmp_path / "CanvOS"
    (path / ".git").mkdir(parents=True)
    (path / ".git/HEAD").write_text("garbage\n")
    (path / "Earthfile").write_text("VERSION 0.6\n")
    with pytest.raises(CheckoutError, match="broken git checkout") as err:
        canvos.checkout(canvos_repo.url, "latest", path)
    assert err.value.exit_code == 4
    assert (path / ".git/HEAD").read_text() == "garbage\n" and (path / "Earthfile").exists()


# ---------------------------------------------------------------- read_facts, resolve_remote


def test_read_facts_of_fixture_checkout(canvos_checkout: tuple[Path, CanvosRepo]) -> None:
    workdir, repo = canvos_checkout
    facts = canvos.read_facts(workdir / "CanvOS")
    assert (facts.tag, facts.sha, facts.pe_version) == ("v4.10.0", repo.tags["v4.10.0"], "v4.9.21")
    assert facts.url == repo.url and facts.ref == "v4.10.0"
    assert facts.k8s_versions["k3s"] == ["1.29.14", "1.30.10", "1.31.6", "1.32.3"]
    assert "build-provider-images" in facts.targets
    # the fixture's checkout is one `checkout` accepts as its own, with nothing to do
    assert canvos.checkout(repo.url, "v4.10.0", workdir / "CanvOS") == facts


def test_facts_come_from_the_commit_not_edited_files(canvos_checkout: tuple[Path, CanvosRepo]) -> None:
    workdir, _ = canvos_checkout
    path = workdir / "CanvOS"
    earthfile = (path / "Earthfile").read_text()
    (path / "Earthfile").write_text(earthfile.replace("PE_VERSION=v4.9.21", "PE_VERSION=v0.0.1"))
    facts = canvos.read_facts(path)
    assert facts.pe_version == "v4.9.21" and facts.modified == ("Earthfile",)


def test_read_facts_outside_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(CheckoutError, match="not a CanvOS checkout"):
        canvos.read_facts(tmp_path)


def test_resolve_remote_has_no_local_side_effects(tmp_path: Path, canvos_repo: CanvosRepo,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert canvos.resolve_remote(canvos_repo.url, "latest") == ("v4.10.0", canvos_repo.tags["v4.10.0"])
    assert canvos.resolve_remote(canvos_repo.url, "v4.10.1-rc.1") == (
        "v4.10.1-rc.1", canvos_repo.tags["v4.10.1-rc.1"])
    assert canvos.resolve_remote(canvos_repo.url, "main") == (None, canvos_repo.main)
    assert canvos.resolve_remote(canvos_repo.url, canvos_repo.tags["v4.9.38"][:8]) == (
        "v4.9.38", canvos_repo.tags["v4.9.38"])
    with pytest.raises(CheckoutError, match=r"closest tags: v4\.9\.38"):
        canvos.resolve_remote(canvos_repo.url, "v4.9.3")
    assert sorted(tmp_path.rglob("*")) == before


def test_git_is_imported_lazily() -> None:
    code = "import sys, edgeforge_ext.canvos.repo, edgeforge_ext.cli; print('git' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
