#!/bin/sh
# Stand-in for Earthly (tests only): same argv contract as `earthly [flags] +target [--ARG=v ...]`,
# reads /workspace/.arg and /workspace/Earthfile, writes build/<ISO_NAME>.iso(.sha256) and leaves
# provider images in the daemon through the mounted socket. Knobs (in .arg or as build args):
# STANDIN_FAIL=1, STANDIN_LOG_LINES=N, STANDIN_SLEEP=S, STANDIN_SHOW_ENV=1, STANDIN_ECHO_FILE=path
# (prints a workspace file, as a `RUN cat` would).
export HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
trap 'echo "standin: terminated"; exit 143' TERM INT
WS=/workspace

usage() {
    echo "Incorrect Usage: flag provided but not defined: $1"
    echo ""
    echo "NAME:"
    echo "   earthly - A build automation tool that executes in containers (stand-in)"
    echo ""
    echo "USAGE:"
    echo "   earthly [options] <target-ref> [--<build-arg-name>=<build-arg-value> ...]"
    exit 1
}

valid_key() {
    case "$1" in
        ''|[0-9]*|*[!A-Za-z0-9_]*) return 1 ;;
    esac
    return 0
}

setarg() {  # setarg KEY VALUE -> variable A_KEY
    valid_key "$1" || return 0
    eval "A_$1=\$2"
}

getarg() {
    valid_key "$1" || return 0
    eval "printf '%s' \"\${A_$1}\""
}

# --- arguments: flags, then +target, then build args -------------------------------------------
target=""
push=0
BUILD_ARGS=""
for a in "$@"; do
    if [ -z "$target" ]; then
        case "$a" in
            +*) target="${a#+}" ;;
            --allow-privileged|-P|--ci|--no-cache|--strict|--verbose|-V|--no-output|--interactive|-i) ;;
            --push) push=1 ;;
            --platform=*|--secret-file-path=*|--arg-file-path=*|--env-file-path=*|--output=*) ;;
            --*) usage "-${a#--}" ;;
            *) usage "$a" ;;
        esac
    else
        case "$a" in
            --*=*) BUILD_ARGS="$BUILD_ARGS
${a#--}" ;;
            *) echo "Error: unexpected argument after the target: $a"; exit 1 ;;
        esac
    fi
done
[ -n "$target" ] || usage "(no target)"
[ -f "$WS/Earthfile" ] || { echo "Error: resolve target +$target: no Earthfile in $WS"; exit 1; }
if ! grep -q "^$target:" "$WS/Earthfile"; then
    echo "Error: resolve target +$target: target $target not found in $WS/Earthfile"
    exit 1
fi

# --- build args: Earthfile ARG defaults < .arg < command line ------------------------------------
expand() {  # a default like $OS_DISTRIBUTION refers to another arg
    case "$1" in
        \$*) getarg "${1#\$}" ;;
        *) printf '%s' "$1" ;;
    esac
}
while IFS= read -r line; do
    case "$line" in
        "ARG "*=*) kv="${line#ARG }"; k="${kv%%=*}"; setarg "$k" "$(expand "${kv#*=}")" ;;
    esac
done < "$WS/Earthfile"
if [ -f "$WS/.arg" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            ''|'#'*) continue ;;
            *=*) ;;
            *) continue ;;
        esac
        k="${line%%=*}"; v="${line#*=}"
        case "$v" in
            \"*\") v="${v#\"}"; v="${v%\"}" ;;
            \'*\') v="${v#\'}"; v="${v%\'}" ;;
        esac
        setarg "$k" "$(expand "$v")"
    done < "$WS/.arg"
fi
OLDIFS=$IFS
IFS='
'
for kv in $BUILD_ARGS; do
    setarg "${kv%%=*}" "${kv#*=}"
done
IFS=$OLDIFS

P="+$target |"
say() { echo "$P $*"; }

echo " 1. Init 🚀"
if [ -n "$EARTHLY_BUILDKIT_HOST" ]; then
    echo "           buildkitd | Connecting to buildkit at $EARTHLY_BUILDKIT_HOST (NO_BUILDKIT=${NO_BUILDKIT:-})"
else
    cap=$(grep CapEff /proc/self/status | awk '{print $2}')
    if [ $(( (0x$cap >> 21) & 1 )) -eq 0 ]; then
        echo "           buildkitd | Starting buildkit daemon as a docker container (earthly-buildkitd)..."
        echo "Error: buildkitd failed to start: the embedded BuildKit needs a privileged container (use --allow-privileged with docker run --privileged, or EARTHLY_BUILDKIT_HOST)"
        exit 1
    fi
    echo "           buildkitd | Started embedded buildkit (privileged)"
fi
echo " 2. Build 🔧"
say "--> standin earthly building +$target (PE_VERSION=$(getarg PE_VERSION))"

if [ "$(getarg STANDIN_SHOW_ENV)" = "1" ]; then
    env | sort | while IFS= read -r line; do say "STANDIN_ENV $line"; done
    say "STANDIN_ARGV $*"
fi
f=$(getarg STANDIN_ECHO_FILE)
if [ -n "$f" ]; then  # like a RUN cat in a real build: whatever the file holds reaches the log
    while IFS= read -r line || [ -n "$line" ]; do say "$line"; done < "$WS/$f"
fi
n=$(getarg STANDIN_LOG_LINES)
if [ -n "$n" ] && [ "$n" -gt 0 ] 2>/dev/null; then
    seq 1 "$n" | sed "s/^/+$target | standin log line /"
fi
s=$(getarg STANDIN_SLEEP)
if [ -n "$s" ]; then
    say "sleeping $s s"
    sleep "$s" &
    wait $!
fi
if [ "$(getarg STANDIN_FAIL)" = "1" ]; then
    say "RUN ./build.sh"
    say "ERROR: the stand-in was told to fail (STANDIN_FAIL=1)"
    echo "Error: build target: +$target: exit code 2"
    exit 2
fi

make_iso() {
    name=$(getarg ISO_NAME); name=${name:-installer}
    root=/tmp/isoroot
    rm -rf "$root"; mkdir -p "$root/files-iso" "$WS/build"
    # Where CanvOS puts user-data: files-iso/config.yaml (+build-iso), config.yaml (+build-uki-iso).
    ud="$root/files-iso/config.yaml"; [ "$(getarg IS_UKI)" = "true" ] && ud="$root/config.yaml"
    if [ -f "$WS/user-data" ]; then
        cp "$WS/user-data" "$ud"
    else
        say "no user-data in the workspace: the ISO carries none"
    fi
    echo "standin $(getarg PE_VERSION)" > "$root/standin.txt"
    kit=/usr/share/edgeforge-standin/boot
    boot=""
    if [ -f "$kit/efi.img" ]; then  # GRUB's boot images: El Torito BIOS + UEFI, isohybrid MBR + ESP
        mkdir -p "$root/boot/grub/i386-pc"; cp "$kit/eltorito.img" "$root/boot/grub/i386-pc/"; cp "$kit/efi.img" "$root/"
        boot="--grub2-mbr $kit/boot_hybrid.img -b boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4
              -boot-info-table --grub2-boot-info -eltorito-alt-boot -e efi.img -no-emul-boot
              -append_partition 2 0xef $kit/efi.img"
    fi
    if command -v xorriso >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        xorriso -as mkisofs -quiet -R -J -V COS_LIVE $boot -o "$WS/build/$name.iso" "$root" || exit 3
    else
        genisoimage -quiet -R -J -V COS_LIVE -o "$WS/build/$name.iso" "$root" || exit 3
    fi
    (cd "$WS/build" && sha256sum "$name.iso" > "$name.iso.sha256")
    say "Artifact +iso/$name.iso output as build/$name.iso"
}

provider_images() {
    dist=$(getarg K8S_DISTRIBUTION)
    [ -n "$dist" ] || { echo "Error: +$target: K8S_DISTRIBUTION is empty"; exit 1; }
    versions=$(getarg K8S_VERSION)
    if [ -z "$versions" ]; then
        versions=$(tr -d ' \n\t' < "$WS/k8s_version.json" | sed -n "s/.*\"$dist\":\[\([^]]*\)\].*/\1/p" | tr -d '"' | tr ',' ' ')
    fi
    [ -n "$versions" ] || { echo "Error: +$target: no Kubernetes version for $dist"; exit 1; }
    tag=$(getarg PE_VERSION)
    custom=$(getarg CUSTOM_TAG)
    [ -n "$custom" ] && tag="$tag-$custom"
    repo=$(getarg IMAGE_REPO); repo=${repo:-$(getarg OS_DISTRIBUTION)}
    rootfs=/tmp/rootfs
    for v in $versions; do
        ref="$(getarg IMAGE_REGISTRY)/$repo:$dist-$v-$tag"
        rm -rf "$rootfs"; mkdir -p "$rootfs/etc"
        echo "STANDIN_PROVIDER=$ref" > "$rootfs/etc/os-release"
        say "--> SAVE IMAGE $ref"
        tar c -C "$rootfs" . | docker import - "$ref" >/dev/null || { echo "Error: docker import $ref failed"; exit 4; }
        say "Image +provider-image output as $ref"
    done
}

case "$target" in
    iso) make_iso ;;
    build-provider-images|build-provider-images-fips) provider_images ;;
    build-all-images) provider_images; make_iso ;;
    *) say "nothing to do for +$target in the stand-in" ;;
esac
[ "$push" = 1 ] && say "--push given (the stand-in pushes nothing)"
echo "========================== 🌍 Earthly Build  ✅ SUCCESS =========================="
exit 0
