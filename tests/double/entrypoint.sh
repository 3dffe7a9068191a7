#!/bin/sh
# The image entrypoint of the Earthly test double: /usr/bin/earthly-entrypoint.sh, as in the real
# earthly/earthly image (earthly Earthfile v0.8.15 `earthly-docker:` ~464-465). Same decisions, in the
# same order, as earthly-entrypoint.sh v0.8.15 (line numbers below are that file's):
set -e

EARTHLY_DEBUG=${EARTHLY_DEBUG:-false}
if [ "$EARTHLY_DEBUG" = "true" ]; then  # :4-8
    set -x
    export EARTHLY_DEBUG
fi

# :10-25 - the config file is written from GLOBAL_CONFIG / GIT_CONFIG only when it does not exist yet
# (a mounted config is never overwritten).
earthly_config="/etc/.earthly/config.yml"
if [ ! -f "$earthly_config" ]; then
    mkdir -p "$(dirname "$earthly_config")"
    touch "$earthly_config"
    if [ -n "$GLOBAL_CONFIG" ]; then
        earthly --config "$earthly_config" config global "$GLOBAL_CONFIG"
    fi
    if [ -n "$GIT_CONFIG" ]; then
        earthly --config "$earthly_config" config git "$GIT_CONFIG"
    fi
fi

# :27-76 - without NO_BUILDKIT, BuildKit runs inside this container: that needs CAP_SYS_ADMIN
# (a privileged container) unless BUILDKIT_HOST names one elsewhere.
if [ -z "$NO_BUILDKIT" ]; then
    if [ -z "$BUILDKIT_HOST" ]; then
        if ! captest --text | grep sys_admin >/dev/null; then  # :30-34
            echo 1>&2 "Container appears to be running unprivileged. Currently, privileged mode is required when buildkit runs inside the container."
            echo 1>&2 "To run this image without buildkit, set the environment variable NO_BUILDKIT=1"
            exit 1
        fi
        if [ -f "/sys/fs/cgroup/cgroup.controllers" ]; then  # :36-39
            echo >&2 "detected cgroups v2; earthly-entrypoint.sh running under pid=$$ with controllers \"$(cat /sys/fs/cgroup/cgroup.controllers)\" in group $(cat /proc/self/cgroup)"
        fi
        # :41-55 - TLS certificates for this BuildKit and its client, under /root/.earthly/certs
        earthly --config "$earthly_config" --buildkit-host=tcp://127.0.0.1:8372 bootstrap --certs-hostname="$(hostname)" --no-buildkit --force-certificate-generation
        [ -f /etc/ca.pem ] || ln -s /root/.earthly/certs/ca_cert.pem /etc/ca.pem
        [ -f /etc/cert.pem ] || ln -s /root/.earthly/certs/buildkit_cert.pem /etc/cert.pem
        [ -f /etc/key.pem ] || ln -s /root/.earthly/certs/buildkit_key.pem /etc/key.pem
        # :57-64 - the daemon, with TLS on
        export BUILDKIT_TCP_TRANSPORT_ENABLED=true
        export BUILDKIT_TLS_ENABLED=true
        /usr/bin/entrypoint.sh buildkitd --config=/etc/buildkitd.toml >/var/log/buildkitd.log 2>&1 &
        # :70-71 - the container's hostname, which Earthly does not take for a local address
        EARTHLY_BUILDKIT_HOST="tcp://$(hostname):8372"
        export EARTHLY_BUILDKIT_HOST
    else
        export EARTHLY_BUILDKIT_HOST="$BUILDKIT_HOST"  # :73
    fi
fi

if [ -n "$SRC_DIR" ]; then  # :78-82
    echo 1>&2 'Please note that SRC_DIR is deprecated. This script will no longer automatically switch to it in the future.'
    cd "$SRC_DIR"
fi

if [ -n "$EARTHLY_EXEC_CMD" ]; then  # :84-88
    export earthly_config
    exec "$EARTHLY_EXEC_CMD"
fi

exec earthly --config "$earthly_config" "$@"  # :90-92
