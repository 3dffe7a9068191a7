"""One error hierarchy; each class carries its exit code. Only the CLI turns them into exits."""

from __future__ import annotations

from typing import Any


class EdgeforgeError(Exception):
    """Base of every error the tool reports to a user (never a bug)."""

    exit_code = 1
    # What the command had to show when it failed (a build's report): `--json` prints it on failure too.
    result: dict[str, Any] | None = None

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = list(details or [])


class UsageError(EdgeforgeError):
    """Wrong flags or configuration (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file, environment variable or flag value is invalid (exit 2)."""


class PreflightError(EdgeforgeError):
    """The host does not meet the minimums (exit 3)."""

    exit_code = 3


class CheckoutError(EdgeforgeError):
    """The CanvOS checkout failed: git, refs, local edits (exit 4)."""

    exit_code = 4


class RenderError(EdgeforgeError):
    """Rendering or validating user-data, .arg, versions or targets failed (exit 5)."""

    exit_code = 5


class ValidationError(RenderError):
    """Inputs failed validation; ``details`` lists every problem (exit 5)."""


class EngineError(EdgeforgeError):
    """The container engine is missing, too old, or refuses what we need (exit 6)."""

    exit_code = 6


class BuildFailed(EdgeforgeError):
    """The Earthly build exited non-zero (exit 7); ``details`` holds the log tail."""

    exit_code = 7


class ArtifactError(EdgeforgeError):
    """A built artifact is missing or wrong (exit 8)."""

    exit_code = 8


class RegistryError(EdgeforgeError):
    """Registry authentication, push, or missing images (exit 9)."""

    exit_code = 9


class RegistryAuthError(RegistryError):
    """The registry refused the credentials, or wants some and has none (exit 9)."""


class RegistryUnreachable(RegistryError):
    """No answer from the registry (or its token service) after the retries (exit 9)."""


class RegistryStatusError(RegistryError):
    """The registry answered an API call with an unexpected HTTP status (exit 9)."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class Interrupted(EdgeforgeError):
    """Ctrl-C or SIGTERM; everything started was stopped and removed (exit 130)."""

    exit_code = 130


# The hint wherever privileged containers are refused or switched off: the two ways a build can work.
PRIVILEGED_WAYS_OUT = ("build on a host that allows privileged containers (Docker as root without a restricting "
                       "security profile: not rootless, not inside a locked-down CI container), or give a BuildKit "
                       "that runs elsewhere with --buildkit-host tcp://HOST:8372 (earthly.buildkit_host; Earthly then "
                       "runs unprivileged)")
