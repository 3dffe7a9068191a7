"""A test double of Earthly v0.8.15 (the CLI inside the `earthly/earthly` image) that follows its rules.

It runs in a Docker image built from local files only (tests/double_image.py): `FROM scratch`, Debian's
busybox-static and python3 interpreter (with just the part of the standard library this package
imports), the host's xorriso and a docker CLI. Image layout as the real one (earthly Earthfile v0.8.15
`earthly-docker:` target, ~450-466): ENTRYPOINT /usr/bin/earthly-entrypoint.sh, the CLI at
/usr/bin/earthly, WORKDIR /workspace.

One module per job:

- `entrypoint.sh`: the image entrypoint (earthly-entrypoint.sh v0.8.15, rewritten)
- `earthly.py`: the command line (flags, `config global`, `bootstrap`, the build action, exit codes)
- `flags.py`: urfave/cli-style flag parsing with the EARTHLY_* environment variables
- `config.py`: /etc/.earthly/config.yml (YAML flow values under `global:`, TLS defaults and paths)
- `godotenv.py`: a port of joho/godotenv v1.5.1, the `.arg`/`.secret`/`.env` reader
- `variables.py`: scopes, overriding build args, secrets (variables/*.go, cmd/earthly/common/shared.go)
- `shell.py`: `$VAR`/`${VAR}` word expansion of Earthfile arguments (BuildKit's shell lexer, subset)
- `earthfile.py`: the Earthfile parser (VERSION, targets, commands, IF/ELSE IF/ELSE/END, FOR/END)
- `interpreter.py`: runs targets (FROM, ARG, LET/SET, RUN, COPY, SAVE ARTIFACT/IMAGE, BUILD, DO, ...)
- `dockerfile.py`: FROM DOCKERFILE (the BuildKit Dockerfile frontend, subset)
- `world.py`: what "pulling" an image means here: which registries are private, what a pulled image holds
- `rootfs.py`: image filesystems on disk, `chroot` for RUN, `docker import` for SAVE IMAGE
- `console.py`: Earthly's console: padded `+target | ` prefixes, phase headers, success/failure bars
- `shims/`: captest, update-ca-certificates, buildkitd and BuildKit's entrypoint.sh as the image has them

Every rule cites the real file and line (Earthly tag v0.8.15 unless said otherwise). Modules import each
other relatively, so the package works as `tests.double` (unit tests) and as `double` (in the image).
"""
