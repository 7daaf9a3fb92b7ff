#!/usr/bin/env bash
# bench/gpu/pack.sh: packs what bench/gpu/run.sh needs to run the bench on a bare x86-64 Linux machine with an
# NVIDIA GPU and its driver but no Node.js, no npm, no network and perhaps no Vulkan loader. Run it here, in a
# checkout with node_modules; it writes the ignored folder .gpu-bench/ (or $GPU_BENCH_PACK), which travels with
# the repository (e.g. named in the device tool's `carry`):
#   node.xz            this machine's node binary, stripped, xz
#   dawn.node.xz       the `webgpu` package's Dawn build for linux-x64, xz
#   bench.mjs          esbuild bundle of bench/main.ts and its imports, peers (TensorFlow.js WebGPU, jax-js)
#                      included; loads dawn.node from $RLHF_DAWN_NODE and shaders from ./shaders/ beside it
#                      (bench/gpu/build.mjs)
#   shaders/           a copy of shaders/*.wgsl, as bundled
#   libvulkan1_*.deb   the Vulkan loader (Debian bookworm), for a machine without libvulkan.so.1
#   extra-debs/        libglvnd0, libx11-6, libxext6 and their own needs: for an ICD library that lacks them
#   runtime-libs.tar.xz  glibc 2.36, libstdc++ and libgcc_s of this machine, used only when the target's
#                      own are too old for node or dawn.node (dawn.node needs GLIBC_2.34 and GLIBCXX_3.4.30)
#   MANIFEST.txt       commit, versions, sizes and sha256 of each file
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
D=${GPU_BENCH_PACK:-.gpu-bench}
[ -d node_modules/webgpu ] || { echo "pack.sh: no node_modules here (npm ci first)" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "pack.sh: this machine is $(uname -m); the target is x86-64: pack on an x86-64 machine" >&2; exit 1; }
DAWN=node_modules/webgpu/dist/linux-x64/dawn.node
NODE_BIN=$(readlink -f "$(command -v node)")
rm -rf "$D"
mkdir -p "$D/shaders"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== bundle"
node bench/gpu/build.mjs "$D"
cp shaders/*.wgsl "$D/shaders/"

echo "== node $(node --version) ($NODE_BIN), dawn.node"
cp "$NODE_BIN" "$WORK/node"
strip "$WORK/node" 2>/dev/null || echo "(strip failed: node packed unstripped)"
# both at once (a few minutes on two cores); -9 saves about 1 MiB on node over -6
xz -9 -c "$WORK/node" >"$D/node.xz" & p1=$!
xz -9 -c "$DAWN" >"$D/dawn.node.xz" & p2=$!
wait "$p1" && wait "$p2"

echo "== runtime libraries (fallback for an older glibc there)"
mkdir -p "$WORK/lib"
for l in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libstdc++.so.6 libgcc_s.so.1; do
  p=$(ldconfig -p | awk -v l="$l" '!f && $1 == l && /x86-64/ { print $NF; f = 1 }')
  [ -n "$p" ] || { [ "$l" = ld-linux-x86-64.so.2 ] && p=/lib64/ld-linux-x86-64.so.2; }
  cp -L "$p" "$WORK/lib/$l"
done
tar -C "$WORK/lib" -cJf "$D/runtime-libs.tar.xz" .

echo "== Vulkan loader (libvulkan1 .deb)"
mkdir -p /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
# shellcheck disable=SC2086
apt-get $o update >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; echo "pack.sh: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
(cd "$D" && apt-get $o download libvulkan1 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
ls "$D"/libvulkan1_*_amd64.deb >/dev/null || { echo "pack.sh: could not download libvulkan1" >&2; exit 1; }
# what the NVIDIA ICD (libGLX_nvidia.so.0) may link and a bare image may lack: glvnd's libGLdispatch and
# libX11/libXext with theirs; run.sh unpacks them under /tmp only when `ldd` of the ICD finds one missing
mkdir -p "$D/extra-debs"
# shellcheck disable=SC2086
(cd "$D/extra-debs" && apt-get $o download libglvnd0 libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
[ "$(ls "$D/extra-debs" | wc -l)" = 8 ] || { echo "pack.sh: could not download the ICD's libraries" >&2; exit 1; }
# plain file names (apt writes an epoch's ':' as %3a): letters, digits, '.', '_' and '-' travel anywhere
for f in "$D"/libvulkan1_*.deb "$D"/extra-debs/*.deb; do
  n=$(basename "$f" | tr -c 'A-Za-z0-9._\n-' '_')
  [ "$n" = "$(basename "$f")" ] || mv "$f" "$(dirname "$f")/$n"
done

echo "== manifest"
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# what the bundle holds beyond that commit: changed and new files of the sources it was built from
changed=$(git status --porcelain -- src shaders bench package.json 2>/dev/null | awk '{ print $2 }' | tr '\n' ' ')
dirty=$(echo "$changed" | wc -w)
{
  echo "commit=$commit"
  echo "uncommitted_files_in_src_shaders_bench=$dirty"
  echo "uncommitted=$changed"
  echo "packed=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "node=$(node --version)"
  echo "webgpu=$(node -p "require('./node_modules/webgpu/package.json').version")"
  echo "tfjs=$(node -p "require('./node_modules/@tensorflow/tfjs/package.json').version")"
  echo "jaxjs=$(node -p "JSON.parse(require('fs').readFileSync(require('path').join(require('path').dirname(require.resolve('@jax-js/jax')), '..', 'package.json'))).version")"
  echo "glibc=$(ldd --version | head -1)"
  echo "# sha256"
  (cd "$D" && find . -type f ! -name MANIFEST.txt | sort | xargs sha256sum)
} >"$D/MANIFEST.txt"

echo "== $D"
(cd "$D" && ls -la . && du -sh --apparent-size .)
size=$(du -sb "$D" | cut -f1)
echo "total: $((size / 1024 / 1024)) MiB ($size bytes); the device tool carries at most 64 MiB with the working tree"
[ "$size" -lt $((60 * 1024 * 1024)) ] || { echo "pack.sh: $D is over 60 MiB" >&2; exit 1; }
