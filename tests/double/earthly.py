"""`earthly`: the command line of the double (cmd/earthly/main.go, app/*.go, subcmd/*.go of v0.8.15).

    earthly [flags] +target [--KEY=value ...]
    earthly [flags] config <dotted.path> <yaml value>
    earthly [flags] bootstrap [--no-buildkit] [--force-certificate-generation] [--certs-hostname=H]

A build goes: `.env` into the environment (main.go:102-125); the config file (app/before.go:77-95, printing
`loading config values from "<file>"` when --config is given); the Init phase; `.env`, `.arg`, `.secret`
read with godotenv (build_cmd.go:283-307: a missing DEFAULT file is fine, a missing NAMED file is an
error); secrets (shared.go:40-82); build args (shared.go:26-38); the BuildKit connection
(base/init_frontend.go:31-51, buildkitd/buildkitd.go:46-124); the Build phase (the interpreter); the
Push and Local Output phases (builder/builder.go:630-817); the success bar. Exit codes as
app/run.go:162-475: 1 for build and usage errors, 2 when cancelled, 6 when BuildKit cannot be reached.

BuildKit connection rules:
- the host is --buildkit-host / EARTHLY_BUILDKIT_HOST, else the config's `buildkit_host`, else
  docker-container://earthly-buildkitd (app/before.go:133-170);
- `tcp://127.0.0.1|localhost|[::1]` and docker-container:// are LOCAL: Earthly would start an
  `earthly-buildkitd` container itself (util/containerutil/shell_shared.go:431-444,
  buildkitd/buildkitd.go:113-123), which the double cannot do: it fails saying so;
- any other tcp:// host is REMOTE: "Connecting to <host>..." (buildkitd.go:96-97); with TLS on (the
  default, config/config.go:158) the client needs the CA, cert and key files (init_frontend.go:36-42) and
  fails like BuildKit's client does when one is missing (client/client.go loadCredentials: "could not
  read ca certificate: open <path>: no such file or directory") after Earthly's retry loop
  (buildkitd.go:636-685: "timeout 1m0s: could not connect to buildkit: ...: buildkitd did not respond
  (in time)"), exit 6 (run.go:420-433). The double fails at once instead of after 60 s.
  BUILDKIT_TLS_ENABLED is an env var of the BuildKit DAEMON (buildkitd.go:387); the client ignores it.
- the host the entrypoint starts (tcp://<container hostname>:8372) is the double's `buildkitd` shim; its
  state file says whether it runs and with TLS.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
import types
from collections.abc import Mapping
from urllib.parse import urlparse

from . import config, flags, godotenv, interpreter, rootfs
from .console import PHASE_BUILD, PHASE_INIT, PHASE_OUTPUT, PHASE_PUSH, Console
from .earthfile import ParseError, parse
from .variables import VariableError, combine_variables, parse_flag_args_with_non_flags, process_secrets

VERSION = "v0.8.15"
DEFAULT_CONFIG = "~/.earthly/config.yml"
BUILDKITD_STATE = os.environ.get("EARTHLY_DOUBLE_BUILDKITD_STATE", "/run/earthly-double/buildkitd.state")
CONNECT_TIMEOUT = "1m0s"  # BuildkitRestartTimeoutS 60 (config.go:154) as time.Duration prints it

USAGE = """NAME:
   earthly - The CI/CD framework that runs anywhere!

USAGE:
   earthly [options] <target-ref>
   earthly [options] --image <target-ref>
   earthly [options] --artifact <target-ref>/<artifact-path> [<dest-path>]
   earthly [options] command [command options]
"""


class Canceled(Exception):
    pass


class Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class App:
    def __init__(self, argv: list[str], environ: Mapping[str, str] | None = None) -> None:
        self.argv = argv
        self.environ = os.environ if environ is None else environ
        self.console = Console()
        self.signals = 0

    # -- output ----------------------------------------------------------------------------------------------
    def error(self, message: str, *, hint: str | None = None, code: int = 1) -> Exit:
        self.console.warn(f"Error: {message}")
        if hint:
            self.console.help(hint)
        return Exit(code)

    # -- entry -----------------------------------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._load_dotenv()
            return self._dispatch()
        except Exit as exc:
            return exc.code
        except Canceled:
            self.console.warn("Canceled")
            return 2  # run.go:434-444

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        """main.go:66-84: the first signal cancels, the second forces exit 9."""
        name = signal.Signals(signum).name
        text = {"SIGTERM": "terminated", "SIGINT": "interrupt"}.get(name, name)
        self.signals += 1
        if self.signals > 1:
            print(f"Received second signal {text}. Forcing exit.", flush=True)
            os._exit(9)
        print(f"Received signal {text}. Cleaning up before exiting...", flush=True)
        raise Canceled()  # a running RUN is stopped by rootfs.run on the way out

    def _load_dotenv(self) -> None:
        """main.go:102-125: `.env` (or EARTHLY_ENV_FILE) into the process environment."""
        name = self.environ.get("EARTHLY_ENV_FILE", ".env")
        try:
            godotenv.load(name)
        except godotenv.DotenvFileError as exc:
            if not exc.missing or "EARTHLY_ENV_FILE" in self.environ:
                print(f"Error loading dot-env file {name}: {exc}", flush=True)
                raise Exit(1) from exc
        except godotenv.DotenvError as exc:
            print(f"Error loading dot-env file {name}: {exc}", flush=True)
            raise Exit(1) from exc

    def _dispatch(self) -> int:
        try:
            self.flags = flags.parse(self.argv, flags.ROOT_FLAGS, self.environ)
        except flags.UsageError as exc:
            # urfave/cli command.go: "Incorrect Usage:" and the help on stdout; run.go default: exit 1
            sys.stdout.write(f"Incorrect Usage: {exc}\n\n{USAGE}")
            sys.stdout.flush()
            return 1
        if self.flags.boolean("version"):
            print(f"earthly version {VERSION} earthly-test-double linux/amd64")
            return 0
        rest = self.flags.rest
        self._before()
        if rest and rest[0] == "config":
            return self._config(rest[1:])
        if rest and rest[0] == "bootstrap":
            return self._bootstrap(rest[1:])
        if rest and rest[0] == "build":
            rest = rest[1:]
        return self._build(rest)

    def _before(self) -> None:
        """app/before.go:30-95."""
        explicit = "config" in self.flags.explicit
        path = self.flags.string("config") if explicit else os.path.expanduser(DEFAULT_CONFIG)
        self.config_path = path
        if explicit:
            self.console.warn(f'loading config values from "{path}"')
        try:
            self.cfg = config.load(path, explicit=explicit)
        except config.ConfigError as exc:
            raise self.error(str(exc)) from exc

    # -- config ----------------------------------------------------------------------------------------------------
    def _config(self, args: list[str]) -> int:
        """subcmd/config_cmds.go: `earthly config <path> <value>`."""
        if len(args) != 2:
            raise self.error("invalid number of arguments provided")
        try:
            config.upsert(self.config_path, args[0], args[1])
        except config.ConfigError as exc:
            raise self.error(f"upsert config: {exc}") from exc
        return 0

    # -- bootstrap -------------------------------------------------------------------------------------------------
    def _bootstrap(self, args: list[str]) -> int:
        """subcmd/bootstrap_cmds.go:115-181; with a tcp host and TLS on, generate the certificates
        (buildkitd/certificates.go GenCerts: CA, earthly and buildkit pairs at the configured paths)."""
        try:
            bflags = flags.parse(args, flags.BOOTSTRAP_FLAGS, self.environ)
        except flags.UsageError as exc:
            sys.stdout.write(f"Incorrect Usage: {exc}\n\n{USAGE}")
            return 1
        host = self.flags.string("buildkit-host") or self.cfg.buildkit_host
        if urlparse(host).scheme == "tcp" and self.cfg.tls_enabled:
            hostname = bflags.string("certs-hostname")
            certs = os.path.dirname(self.cfg.tlsca)
            os.makedirs(certs, exist_ok=True)
            paths = {
                self.cfg.tlsca: "CERTIFICATE", os.path.join(certs, "ca_key.pem"): "RSA PRIVATE KEY",
                self.cfg.tlscert: "CERTIFICATE", self.cfg.tlskey: "RSA PRIVATE KEY",
                os.path.join(certs, "buildkit_cert.pem"): "CERTIFICATE",
                os.path.join(certs, "buildkit_key.pem"): "RSA PRIVATE KEY",
            }
            for path, kind in paths.items():
                if bflags.boolean("force-certificate-generation") or not os.path.exists(path):
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(f"-----BEGIN {kind}-----\nearthly-test-double {hostname}\n-----END {kind}-----\n")
                    os.chmod(path, 0o600 if "KEY" in kind else 0o644)
        os.makedirs(config.earthly_dir(), exist_ok=True)
        self.console.line("bootstrap", "Bootstrapping successful.")
        return 0

    # -- build -----------------------------------------------------------------------------------------------------
    def _read_dotenv(self, flag: str, default: str) -> tuple[dict[str, str], bool]:
        """build_cmd.go:283-307: (values, found). A missing default file is fine, a named one is not."""
        name = self.flags.string(flag)
        try:
            return godotenv.read(name), True
        except godotenv.DotenvFileError as exc:
            if flag in self.flags.explicit or not exc.missing:
                raise self.error(f"read {name}: {exc}") from exc
            return {}, False
        except godotenv.DotenvError as exc:
            raise self.error(f"read {name}: {exc}") from exc

    def _build(self, args: list[str]) -> int:
        try:
            flag_args, non_flag_args = parse_flag_args_with_non_flags(args)
        except VariableError as exc:
            raise self.error(f"parse args {' '.join(args)}: {exc}") from exc
        if not non_flag_args:  # build_cmd.go:225-229
            sys.stdout.write(USAGE)
            raise self.error("no target reference provided. Try earthly +<target-name>")
        if len(non_flag_args) != 1:
            sys.stdout.write(USAGE)
            raise self.error(f"invalid arguments {' '.join(non_flag_args)}")
        target = non_flag_args[0]
        if not target.startswith("+") or len(target) == 1:
            raise self.error(f"invalid target {target}")
        no_output = self.flags.boolean("no-output")
        if self.flags.boolean("ci"):  # build_cmd.go:132-139: --ci implies --no-output and --strict
            no_output = not self.flags.boolean("output")

        self.console.phase(PHASE_INIT)  # build_cmd.go:279
        for k in flag_args:
            if k.startswith(("build-arg=", "buildarg=")):
                self.console.warn(f'Found a flag named "{k}"; flags after the build target should be specified as '
                                  "--KEY=VAL")
        self._read_dotenv("env-file-path", ".env")
        arg_map, _ = self._read_dotenv("arg-file-path", ".arg")
        secret_map, _ = self._read_dotenv("secret-file-path", ".secret")
        try:
            secrets = process_secrets(self.flags.strings("secret"), self.flags.strings("secret-file"), secret_map,
                                      self.flags.string("secret-file-path"), self.environ)
            overriding = combine_variables(arg_map, flag_args, self.flags.strings("build-arg"), self.environ)
        except VariableError as exc:
            raise self.error(str(exc), hint=exc.hint) from exc
        self._connect()
        return self._run_build(target[1:], overriding, secrets, no_output)

    def _connect(self) -> None:
        host = self.flags.string("buildkit-host") or self.cfg.buildkit_host or "docker-container://earthly-buildkitd"
        url = urlparse(host)
        if url.scheme not in ("tcp", "docker-container", "podman-container", "unix"):
            raise self.error(f"could not init frontend: invalid buildkit_host: {host}")
        local = url.scheme in ("docker-container", "podman-container") or \
            url.hostname in ("127.0.0.1", "localhost", "::1")
        if local:
            self.console.line("buildkitd", "Starting buildkit daemon as a docker container (earthly-buildkitd)...")
            raise self.error(
                f"build new buildkitd client: maybe start buildkitd: start: {host} is a local address, so Earthly "
                "manages the earthly-buildkitd container itself (util/containerutil/shell_shared.go:431-444); the "
                "Earthly test double does not start BuildKit containers: use a remote host such as "
                "tcp://buildkit.edgeforge.test:8372 or the image's own (privileged) BuildKit")
        self.console.line("buildkitd", f"Connecting to {host}...")
        problem = self._tls_problem(url.scheme) or self._reachability_problem(url)
        if problem:
            raise self.error(
                f"build new buildkitd client: connect provided buildkit: timeout {CONNECT_TIMEOUT}: could not "
                f"connect to buildkit: {problem}: buildkitd did not respond (in time)", code=6)
        self.console.line("buildkitd", "...Done")

    def _tls_problem(self, scheme: str) -> str:
        """init_frontend.go:36-42 and buildkit client loadCredentials: CA first, then the key pair."""
        if scheme != "tcp" or not self.cfg.tls_enabled:
            return ""
        if not os.path.isfile(self.cfg.tlsca):
            return f"could not read ca certificate: open {self.cfg.tlsca}: no such file or directory"
        for path in (self.cfg.tlscert, self.cfg.tlskey):
            if not os.path.isfile(path):
                return f"could not read certificate/key: open {path}: no such file or directory"
        return ""

    def _reachability_problem(self, url: object) -> str:
        hostname = getattr(url, "hostname", "") or ""
        if hostname.endswith(".unreachable.test"):
            return f"dial tcp: lookup {hostname}: no such host"
        if hostname == socket.gethostname():  # the BuildKit the entrypoint started
            state: dict[str, str] = {}
            for _ in range(50):  # Earthly retries while the daemon starts (buildkitd.go:636-685)
                try:
                    with open(BUILDKITD_STATE, encoding="utf-8") as f:
                        state = dict(line.strip().split("=", 1) for line in f if "=" in line)
                    break
                except FileNotFoundError:
                    time.sleep(0.1)
            if not state:
                return f"dial tcp {hostname}:8372: connect: connection refused"
            if state.get("running") != "true":
                return f"dial tcp {hostname}:8372: connect: connection refused"
            server_tls = state.get("tls") == "true"
            if server_tls and not self.cfg.tls_enabled:
                return "connection error: desc = \"error reading server preface: EOF\""
            if not server_tls and self.cfg.tls_enabled:
                return "connection error: desc = \"transport: authentication handshake failed: tls: first record " \
                       "does not look like a TLS handshake\""
        return ""

    def _run_build(self, target: str, overriding: object, secrets: dict[str, bytes], no_output: bool) -> int:
        from .variables import Scope

        assert isinstance(overriding, Scope)
        self.console.phase(PHASE_BUILD)
        state_dir = interpreter.temp_state_dir()
        try:
            try:
                with open("Earthfile", encoding="utf-8") as f:
                    ef = parse(f.read(), "Earthfile")
            except FileNotFoundError as exc:
                raise self.error(f"resolve build context for target +{target}: no Earthfile nor build.earth "
                                 f"file found for target +{target}") from exc
            except ParseError as exc:
                raise self.error(str(exc)) from exc
            opts = interpreter.Options(
                context_dir=os.getcwd(), allow_privileged=self.flags.boolean("allow-privileged"),
                push=self.flags.boolean("push"), no_output=no_output, secrets=secrets,
                builtin={"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64",
                         "TARGETVARIANT": "", "USERPLATFORM": "linux/amd64", "USEROS": "linux",
                         "USERARCH": "amd64", "USERVARIANT": "", "NATIVEPLATFORM": "linux/amd64",
                         "NATIVEOS": "linux", "NATIVEARCH": "amd64", "NATIVEVARIANT": ""},
                state_dir=state_dir)
            try:
                interp = interpreter.Interpreter(ef, opts, self.console)
                interp.build(target, overriding, do_saves=True, allow_privileged=opts.allow_privileged)
            except interpreter.BuildFailure as exc:
                return self._failed(exc)
            self.console.phase_footer()
            return self._outputs(interp, opts)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)

    def _failed(self, exc: interpreter.BuildFailure) -> int:
        """formatter.go:440-472 printBuildFailure, then run.go's help for failed RUNs (run.go:233-251)."""
        if exc.command is not None and exc.target:
            self.console.failure()
            self.console.line(exc.target, "Repeating the failure error...", failed=True)
            self.console.line(exc.target, f"--> {exc.command}", failed=True)
            if exc.output:
                self.console.line(exc.target, exc.output.decode(errors="replace"), failed=True)
            else:
                self.console.line(exc.target, "[no output]", failed=True)
            self.console.line(exc.target, exc.message, failed=True)
        elif exc.target:
            self.console.line(exc.target, f"Error: {exc.message}", failed=True)
        else:
            self.console.warn(f"Error: {exc.message}")
        if exc.hint:
            self.console.help(exc.hint)
        if exc.process_exit:
            args = ["earthly", "-i", *self._redacted(self.argv)]
            args = [a for a in args if a != "--ci"]
            self.console.help("To debug your build, you can use the --interactive (-i) flag to drop into a shell of "
                              f"the failing RUN step: \"{' '.join(args)}\"\n")
        return exc.exit_code

    @staticmethod
    def _redacted(args: list[str]) -> list[str]:
        """run.go:517-535 redactSecretsFromArgs."""
        out: list[str] = []
        secret_next = False
        for a in args:
            if secret_next:
                secret_next = False
                k, sep, _ = a.partition("=")
                if sep:
                    out.append(f"{k}=XXXXX")
                    continue
            if a in ("-s", "--secret"):
                secret_next = True
            out.append(a)
        return out

    def _outputs(self, interp: interpreter.Interpreter, opts: interpreter.Options) -> int:
        """builder.go:630-817: the Push and Local Output phases, only after the whole build succeeded."""
        self.console.phase(PHASE_PUSH, disabled=not opts.push)
        if not opts.push:
            self.console.warn("To enable pushing use earthly --push")
        push_lines: list[str] = []
        output_lines: list[str] = []
        for st in interp.built:
            if not st.do_saves:
                continue
            for img in st.save_images:
                for ref in img.refs:
                    if not opts.no_output:
                        code, out = rootfs.docker_import(img.tar_root, ref, img.env, img.workdir)
                        if code != 0:
                            return self._failed(interpreter.BuildFailure(
                                f"load image {ref}: docker import failed: {out}"))
                        output_lines.append(f"Image {st.name} output as {ref}")
                    if img.push and opts.push:
                        code, out = rootfs.docker_push(ref)
                        if code != 0:
                            return self._failed(interpreter.BuildFailure(f"push {ref}: {out}"))
                        push_lines.append(f"Pushed image {st.name} as {ref}")
                    elif img.push:
                        push_lines.append(f"Did not push image {ref}")
        for line in push_lines:
            self.console.warn(line)
        self.console.phase_footer()
        self.console.phase(PHASE_OUTPUT, disabled=opts.no_output)
        if not opts.no_output:
            for st in interp.built:
                if not st.do_saves:
                    continue
                for saved in st.save_locals:
                    src = os.path.join(st.artifacts, saved.artifact)
                    if not os.path.lexists(src):
                        if saved.if_exists:
                            continue
                        return self._failed(interpreter.BuildFailure(f"artifact {st.name}/{saved.artifact} not found"))
                    dest = os.path.join(opts.context_dir, saved.dest)
                    _export(src, dest)
                    output_lines.append(f"Artifact {st.name}/{saved.artifact} output as {saved.dest}")
        for line in output_lines:
            self.console.warn(line)
        self.console.phase_footer()
        self.console.success()
        return 0


def _export(src: str, dest: str) -> None:
    """Write an artifact to the host as the container's root: root-owned, modes kept (the real Earthly
    runs as root in its image, so `build/` and its files belong to root on the host)."""
    parent = os.path.dirname(os.path.normpath(dest))
    if parent:
        # Earthly v0.8.15 util/saveartifactlocally/saveartifactlocally.go:84 os.MkdirAll(toDir, 0755): an
        # existing directory keeps its mode (the tool makes build/ 0700 and relies on that); :69-73 an existing
        # destination file is removed first
        os.makedirs(parent, mode=0o755, exist_ok=True)
    if os.path.isdir(src) and not os.path.islink(src):
        rootfs.copy_tree(src, dest)
    else:
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(src))
        if os.path.lexists(dest):
            os.remove(dest)
        shutil.copy2(src, dest, follow_symlinks=False)


def main(argv: list[str] | None = None) -> int:
    return App(sys.argv[1:] if argv is None else argv).run()
