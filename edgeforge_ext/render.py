"""The only jinja2 user: one sandboxed, strict environment, a YAML-quoting filter, one render entry.

Also the top of the render step: `render_all` builds the user-data and .arg values from a Config,
renders both templates, validates everything and reports every problem at once; `write_rendered`
puts the files in place (atomically, user-data mode 0600, only when the bytes change).
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeforge_ext.errors import ConfigError, RenderError, ValidationError
from edgeforge_ext.fsutil import atomic_write
from edgeforge_ext.yamlquote import QuoteError, yaml_quote

if TYPE_CHECKING:
    import jinja2

    from edgeforge_ext.canvos.contract import BuildContract
    from edgeforge_ext.config import Config

USER_DATA_TEMPLATE = "user-data.j2"
ARG_TEMPLATE = "arg.j2"
USER_DATA_FILE = "user-data"
ARG_FILE = ".arg"


@dataclass(frozen=True)
class Rendered:
    user_data: str  # the full user-data text (holds secrets!)
    arg_text: str  # the .arg text (no secrets)
    arg_values: dict[str, str]  # KEY -> VALUE as bash and Earthly read it back from .arg
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Templates


def packaged_template_dir() -> Path:
    """The templates shipped in the wheel, else the repository's templates/ (editable install)."""
    import edgeforge_ext

    package = Path(edgeforge_ext.__file__).parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / USER_DATA_TEMPLATE).is_file():
            return candidate
    raise RenderError(f"the packaged templates are missing (looked in {package / 'templates'} and "
                      f"{package.parent / 'templates'}); reinstall edgeforge-ext")


def _safe_path(root: Path, name: str) -> Path | None:
    """`root/name` if it stays inside root (no absolute names, no '..', no symlink escape)."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or ".." in Path(name).parts:
        return None
    path = (root / name).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


@functools.lru_cache(maxsize=8)
def _environment(roots: tuple[Path, ...]) -> jinja2.Environment:
    """THE environment: sandboxed, StrictUndefined, trailing newline kept, `yq` filter."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from edgeforge_ext.argfile import quote_arg

    class RootLoader(jinja2.BaseLoader):
        """Loads only files inside the template roots (first root wins), like copier does."""

        def get_source(self, environment: jinja2.Environment, template: str,
                       ) -> tuple[str, str, Any]:
            for root in roots:
                path = _safe_path(root, template)
                if path is None:
                    continue
                source = path.read_text(encoding="utf-8")
                return source, str(path), functools.partial(_unchanged, path, path.stat().st_mtime)
            raise jinja2.TemplateNotFound(template)

    env = SandboxedEnvironment(
        loader=RootLoader(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        bytecode_cache=_bytecode_cache(),
    )

    def strict(func: Any) -> Any:
        # A filter sees an undefined value before anything prints it: fail with jinja's message.
        def apply(value: Any) -> str:
            if isinstance(value, jinja2.Undefined):
                value._fail_with_undefined_error()
            return str(func(value))

        return apply

    env.filters["yq"] = strict(yaml_quote)
    env.filters["argq"] = strict(quote_arg)
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (keyed by the template source's checksum): compiling is
    most of a render's cost, and a nightly no-op run renders every time. None when no cache dir works."""
    import jinja2

    from edgeforge_ext import __version__

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = base / "edgeforge-ext" / f"jinja-{__version__}"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(directory))


def _unchanged(path: Path, mtime: float) -> bool:
    return path.is_file() and path.stat().st_mtime == mtime


def _template_roots(template_dir: Path | None) -> tuple[Path, ...]:
    packaged = packaged_template_dir().resolve()
    if template_dir is None:
        return (packaged,)
    user = Path(template_dir).expanduser().resolve()
    if not user.is_dir():
        raise ConfigError(f"template directory not found: {user} (render.template_dir / --template-dir)")
    return (user, packaged)


def _template_location(exc: BaseException, roots: tuple[Path, ...]) -> str:
    """'file:line' of the innermost template frame (jinja rewrites tracebacks to template lines)."""
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    prefixes = tuple(str(r) + os.sep for r in roots)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(prefixes)]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    return "<template>"


def render_template(name: str, context: Mapping[str, Any], *, template_dir: Path | None = None) -> str:
    """Render one template. Any template problem becomes a RenderError naming its file and line."""
    import jinja2

    roots = _template_roots(template_dir)
    env = _environment(roots)
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found in {', '.join(map(str, roots))}") from None
    except (jinja2.TemplateError, QuoteError, TypeError, ValueError, AttributeError) as exc:
        where = _template_location(exc, roots)
        message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
        raise RenderError(f"{where}: {message}",
                          hint="templates see the variables listed in the README (render)") from None


def template_source(name: str, template_dir: Path | None) -> Path:
    """Which file `name` is loaded from (the user's directory first)."""
    for root in _template_roots(template_dir):
        path = _safe_path(root, name)
        if path is not None:
            return path
    raise RenderError(f"template {name} not found")


# ---------------------------------------------------------------------------------------------
# The render step


def render_all(config: Config, *, pe_version: str | None,
               k8s_versions: Mapping[str, list[str]] | None, contract: BuildContract | None = None) -> Rendered:
    """Render user-data and .arg and validate both; every problem is listed in one ValidationError.

    With the checkout's `contract`, .arg is checked against its Earthfile (declared ARGs, defaults)."""
    import edgeforge_ext.argfile as argfile
    import edgeforge_ext.userdata as userdata

    problems: list[str] = []
    warnings: list[str] = []
    template_dir = Path(config.render.template_dir) if config.render.template_dir else None
    if template_dir is not None:
        for name in (USER_DATA_TEMPLATE, ARG_TEMPLATE):
            source = template_source(name, template_dir)
            if not source.is_relative_to(template_dir.expanduser().resolve()):
                warnings.append(f"{template_dir} has no {name}: using the packaged one")

    values = argfile.arg_values(config, pe_version=pe_version, k8s_versions=k8s_versions,
                                problems=problems, warnings=warnings, contract=contract)
    context = userdata.build_context(config, problems=problems, warnings=warnings)

    try:
        text = render_template(USER_DATA_TEMPLATE, context, template_dir=template_dir)
        if config.render.extra_user_data:
            text = userdata.merge_extra(text, Path(config.render.extra_user_data), problems, warnings)
        userdata.validate(text, problems, warnings)
        userdata.check_secrets(text, userdata.expected_secrets(context), problems)
        arg_text = render_template(ARG_TEMPLATE, {"args": values}, template_dir=template_dir)
        argfile.check_no_secrets(arg_text, config, problems)
    except RenderError:
        # A value already reported with its config key (e.g. one YAML cannot hold) can make the
        # template fail too: the list of problems is the better message.
        _raise_if(problems)
        raise
    _raise_if(problems)
    return Rendered(user_data=text, arg_text=arg_text, arg_values=dict(values),
                    warnings=tuple(dict.fromkeys(warnings)))


def _raise_if(problems: list[str]) -> None:
    if problems:
        count = len(problems)
        plural = "s" if count != 1 else ""
        raise ValidationError(f"{count} problem{plural} in the rendered user-data and .arg",
                              details=problems,
                              hint="fix the configuration (edgeforge-ext config show) and run render again")


def write_rendered(rendered: Rendered, dest: Path) -> tuple[Path, Path]:
    """Write user-data (mode 0600: it holds secrets) and .arg into `dest`; atomic, only on change."""
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"cannot create {dest}: {exc.strerror}") from exc
    user_data = dest / USER_DATA_FILE
    arg = dest / ARG_FILE
    _write_atomic(user_data, rendered.user_data.encode("utf-8"), 0o600)
    _write_atomic(arg, rendered.arg_text.encode("utf-8"), 0o644)
    return user_data, arg


def _write_atomic(path: Path, data: bytes, mode: int) -> bool:
    """True when the file was (re)written. The mode is fixed even when the bytes are the same."""
    try:
        return atomic_write(path, data, mode)
    except OSError as exc:
        raise RenderError(f"cannot write {path}: {exc.strerror}") from exc
