#!/bin/sh
# BuildKit's entrypoint (/usr/bin/entrypoint.sh in the earthly image, buildkitd/Earthfile:50): here it
# only runs its arguments.
exec "$@"
