#!/usr/bin/env bash
# bench/gpu/run.sh [BENCH OPTIONS]: runs the bench on a bare x86-64 machine with an NVIDIA GPU, through Vulkan,
# from what bench/gpu/pack.sh packed into .gpu-bench/ (no Node.js, npm, node_modules or network needed there).
# Run it from anywhere in the checkout, with .gpu-bench/ beside it (the device tool: carry [".gpu-bench"]):
#   bash bench/gpu/run.sh
# It unpacks node and dawn.node into /tmp/gpu-bench, installs the Vulkan loader from the carried .deb when
# `ldconfig -p` has no libvulkan.so.1, points the loader at the NVIDIA ICD (and, where `ldd` finds the ICD's
# library linking something missing, unpacks the carried glvnd/libX11/libXext under /tmp for it; where this
# machine's glibc or libstdc++ is too old for node or dawn.node, runs node through the carried ones), checks that Dawn's adapter is the
# NVIDIA GPU (printing its name; it fails on llvmpipe/SwiftShader or no adapter), then runs the bench in two
# phases, each writing its JSON and its table under $OUT (./bench-out when OUT is unset):
#   matmul  `--only matmul` (GPT-2 shapes at 512 and 4096 rows, 3 repeats, both peers): gpu-bench-matmul.json,
#           the figures of the issue's goal, first, so that they come back whatever happens later
#   full    the whole bench at full sizes, peers included: gpu-bench.json
# and gpu-bench.log (everything printed) and peak.txt (the large matmuls as a share of the GPU's fp32 peak).
# Both phases share a budget of GPU_BENCH_BUDGET_S seconds (510: under 9 minutes with the unpacking); each runs
# under `timeout`, the matmul phase at most 180 s, the full one what is left.
# BENCH OPTIONS go to both phases (the matmul phase keeps its --only matmul), e.g. --quick, --no-peer, --reps 5.
# Settings (environment):
#   OUT                 where results go (./bench-out)
#   GPU_BENCH_PACK      the packed folder (.gpu-bench)
#   GPU_BENCH_PHASES    "matmul full" (default), "matmul", "full", or "" (the checks only)
#   GPU_BENCH_BUDGET_S  510
#   GPU_BENCH_ALLOW_CPU=1      accept a CPU adapter (lavapipe): local tests of the packing only
#   GPU_BENCH_CARRIED_LIBC=1   use the carried glibc/libstdc++ even where the machine's own load node and Dawn
#   GPU_BENCH_VULKAN_DEB=tmp   unpack the carried Vulkan loader under /tmp and use it, even where one is installed
#   GPU_BENCH_EXTRA_DEBS=1     unpack the carried extra-debs under /tmp and use them, even where nothing is missing
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
ROOT=$PWD
PACK=$(cd "${GPU_BENCH_PACK:-.gpu-bench}" 2>/dev/null && pwd) || {
  echo "run.sh: no packed folder ${GPU_BENCH_PACK:-.gpu-bench} here: run bench/gpu/pack.sh where node_modules is, and carry the folder" >&2
  exit 1
}
OUT=${OUT:-./bench-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
T=${GPU_BENCH_TMP:-/tmp/gpu-bench}
BUDGET=${GPU_BENCH_BUDGET_S:-510}
PHASES=${GPU_BENCH_PHASES-matmul full}

say() { printf '== %s\n' "$*"; }

# xz -d, or Python's lzma where xz is missing
unxz_to() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" >"$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
# a .tar.xz or a .deb's data into a folder: tar/dpkg-deb where there, else Python
untar_to() {
  mkdir -p "$2"
  case $1 in
    *.deb)
      if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$1" "$2"; return; fi
      python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'!<arch>\n', 'not a .deb'
i = 8
while i < len(data):
    name, size = data[i:i + 16].decode().strip().rstrip('/'), int(data[i + 48:i + 58])
    body = data[i + 60:i + 60 + size]
    if name.startswith('data.tar'):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    i += 60 + size + (size & 1)
PY
      ;;
    *)
      if command -v xz >/dev/null 2>&1; then tar -C "$2" -xJf "$1"
      else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"; fi
      ;;
  esac
}

# The driver's library that the ICD json names, found as the loader finds it (beside the json if it holds a
# slash, else on LD_LIBRARY_PATH or in ld.so's cache), checked with ldd; where some library it links is
# missing (glvnd's libGLdispatch, libX11, libXext on a bare image), the carried extra-debs are unpacked under
# $T/extra and put on LD_LIBRARY_PATH. GPU_BENCH_EXTRA_DEBS=1 unpacks them regardless (a local test).
icd_deps() {
  local json=${VK_DRIVER_FILES:-} lib='' path='' d missing
  [ -n "$json" ] && [ -f "$json" ] && lib=$(sed -n 's/.*"library_path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$json" | head -1)
  if [ -n "$lib" ]; then
    case $lib in
      /*) path=$lib ;;
      */*) path=$(dirname "$json")/$lib ;;
      *) local IFS=:
         for d in ${LD_LIBRARY_PATH:-}; do [ -e "$d/$lib" ] && { path=$d/$lib; break; }; done
         unset IFS
         [ -n "$path" ] || path=$("$ldconfig" -p 2>/dev/null | awk -v l="$lib" '!f && $1 == l { print $NF; f = 1 }') ;;
    esac
    echo "ICD library: $lib -> ${path:-NOT FOUND (the loader will not find it either)}"
  fi
  missing=''
  if [ -n "$path" ] && command -v ldd >/dev/null 2>&1; then
    missing=$(ldd "$path" 2>&1 | awk '/not found/ { print $1 }' | tr '\n' ' ')
    [ -n "$missing" ] && echo "the ICD library links what is not here: $missing"
  fi
  if [ -n "$missing" ] || [ "${GPU_BENCH_EXTRA_DEBS:-}" = 1 ]; then
    local deb
    for deb in "$PACK"/extra-debs/*.deb; do untar_to "$deb" "$T/extra" || return 1; done
    export LD_LIBRARY_PATH="$T/extra/usr/lib/x86_64-linux-gnu:$T/extra/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "unpacked $(ls "$PACK"/extra-debs | wc -l) carried .debs (libglvnd0, libx11-6, libxext6, ...) into $T/extra"
    [ -n "$path" ] && command -v ldd >/dev/null 2>&1 && { missing=$(ldd "$path" 2>&1 | awk '/not found/ { print $1 }' | tr '\n' ' '); echo "still missing: ${missing:-nothing}"; }
  fi
  return 0
}

run_all() {
  local start=$SECONDS
  left() { echo $((BUDGET - (SECONDS - start))); }
  say "bench/gpu/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) ($(uname -m)); pack $PACK; out $OUT; budget ${BUDGET}s; phases: $PHASES; bench options: ${*:-(none)}"
  sed -n '/^# sha256/q;p' "$PACK/MANIFEST.txt"
  [ "$(uname -m)" = x86_64 ] || { echo "run.sh: this machine is $(uname -m); the packed node and dawn.node are x86-64" >&2; return 1; }
  if command -v nvidia-smi >/dev/null 2>&1; then
    say "nvidia-smi"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
  else
    say "no nvidia-smi on the PATH"
  fi

  say "checking and unpacking into $T"
  (cd "$PACK" && sed -n '/^# sha256/,$p' MANIFEST.txt | tail -n +2 | sha256sum -c --quiet) || { echo "run.sh: $PACK does not match its MANIFEST.txt (a partial copy?)" >&2; return 1; }
  rm -rf "$T" && mkdir -p "$T" || return 1
  unxz_to "$PACK/node.xz" "$T/node" && chmod +x "$T/node" && unxz_to "$PACK/dawn.node.xz" "$T/dawn.node" || { echo "run.sh: unpacking failed" >&2; return 1; }
  export RLHF_DAWN_NODE=$T/dawn.node RLHF_SHADER_DIR=$PACK/shaders
  local commit dirty
  commit=$(sed -n 's/^commit=//p' "$PACK/MANIFEST.txt")
  dirty=$(sed -n 's/^uncommitted_files_in_src_shaders_bench=//p' "$PACK/MANIFEST.txt")
  BENCH_COMMIT=$commit
  [ -n "$dirty" ] && [ "$dirty" != 0 ] && BENCH_COMMIT="$commit (+$dirty uncommitted files)"
  export BENCH_COMMIT

  # the driver's libraries (the ICD names libGLX_nvidia.so.0 without a folder)
  local d
  for d in /usr/local/nvidia/lib /usr/local/nvidia/lib64; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done

  say "Vulkan loader"
  local ldconfig deb
  ldconfig=$(command -v ldconfig || ls /sbin/ldconfig /usr/sbin/ldconfig 2>/dev/null | head -1)
  deb=$(ls "$PACK"/libvulkan1_*.deb 2>/dev/null | head -1)
  if [ "${GPU_BENCH_VULKAN_DEB:-}" != tmp ] && [ -n "$ldconfig" ] && "$ldconfig" -p | grep 'libvulkan\.so\.1 ' >/dev/null; then
    "$ldconfig" -p | grep 'libvulkan\.so\.1 '
  elif [ -z "$deb" ]; then
    echo "run.sh: no libvulkan.so.1 here and no libvulkan1 .deb in $PACK" >&2; return 1
  elif [ "${GPU_BENCH_VULKAN_DEB:-}" != tmp ] && [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null 2>&1 && [ -n "$ldconfig" ]; then
    echo "none installed: unpacking $(basename "$deb") into / (as the workplace's notes do)"
    dpkg -x "$deb" / && "$ldconfig" || return 1
    "$ldconfig" -p | grep 'libvulkan\.so\.1 ' || { echo "run.sh: libvulkan.so.1 still missing after dpkg -x" >&2; return 1; }
  else
    echo "unpacking $(basename "$deb") into $T/vulkan and putting it on LD_LIBRARY_PATH"
    untar_to "$deb" "$T/vulkan" || return 1
    export LD_LIBRARY_PATH="$T/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    ls -la "$T/vulkan/usr/lib/x86_64-linux-gnu/"
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ]; then
    # VK_ICD_FILENAMES too: loaders older than 1.3.207 know only that name
    export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
  fi
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset: the loader searches its default folders)}"
  [ -n "${VK_DRIVER_FILES:-}" ] && [ -f "$VK_DRIVER_FILES" ] && { cat "$VK_DRIVER_FILES"; echo; }
  icd_deps
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

  say "node"
  NODE=("$T/node")
  if [ "${GPU_BENCH_CARRIED_LIBC:-}" = 1 ] || ! "$T/node" -e 'require(process.argv[1])' "$T/dawn.node" >"$T/probe.log" 2>&1; then
    [ "${GPU_BENCH_CARRIED_LIBC:-}" = 1 ] || { echo "node or dawn.node does not load with this machine's libraries:"; cat "$T/probe.log"; }
    echo "using the carried glibc/libstdc++ (runtime-libs.tar.xz) through its own ld.so"
    untar_to "$PACK/runtime-libs.tar.xz" "$T/lib" || return 1
    NODE=("$T/lib/ld-linux-x86-64.so.2" --library-path "$T/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$T/node")
    "${NODE[@]}" -e 'require(process.argv[1])' "$T/dawn.node" || { echo "run.sh: node with dawn.node does not load even with the carried libraries" >&2; return 1; }
  fi
  "${NODE[@]}" --version

  say "adapter"
  if ! "${NODE[@]}" "$ROOT/bench/gpu/adapter.mjs"; then
    say "adapter check failed; the Vulkan loader's errors and warnings:"
    VK_LOADER_DEBUG=error,warn,driver "${NODE[@]}" "$ROOT/bench/gpu/adapter.mjs" 2>&1 | head -80
    return 2
  fi

  local phase rc=0 prc limit
  for phase in $PHASES; do
    local args=("$@") name=gpu-bench
    if [ "$phase" = matmul ]; then args+=(--only matmul); name=gpu-bench-matmul; limit=180
    elif [ "$phase" = full ]; then limit=$(($(left) - 15))
    else echo "run.sh: unknown phase $phase (matmul, full)" >&2; rc=1; continue; fi
    [ "$limit" -le "$(($(left) - 15))" ] || limit=$(($(left) - 15))
    if [ "$limit" -lt 30 ]; then say "phase $phase skipped: $(left) s of the budget left"; rc=1; continue; fi
    say "phase $phase: bench.mjs ${args[*]} --out $OUT/$name.json (at most ${limit}s)"
    local to=()
    command -v timeout >/dev/null 2>&1 && to=(timeout -k 10 "$limit")
    local t0=$SECONDS
    (cd "$ROOT" && "${to[@]}" "${NODE[@]}" "$PACK/bench.mjs" "${args[@]}" --out "$OUT/$name.json") | tee "$OUT/$name.txt"
    prc=${PIPESTATUS[0]}
    local note=''
    [ "$prc" = 124 ] && note=' (timed out: no JSON; the log has what it measured)'
    say "phase $phase: exit $prc after $((SECONDS - t0)) s$note"
    [ "$prc" = 0 ] || rc=$prc
  done

  say "large matmuls against the GPU's fp32 peak"
  local jsons=()
  for f in "$OUT/gpu-bench-matmul.json" "$OUT/gpu-bench.json"; do [ -s "$f" ] && jsons+=("$f"); done
  if [ ${#jsons[@]} -gt 0 ] && command -v python3 >/dev/null 2>&1; then
    python3 "$ROOT/bench/gpu/peak.py" "${jsons[@]}" | tee "$OUT/peak.txt"
  else
    echo "(no JSON written, or no python3)"
  fi
  say "done in $((SECONDS - start)) s, exit $rc; files in $OUT:"
  ls -la "$OUT"
  return "$rc"
}

run_all "$@" 2>&1 | tee "$OUT/gpu-bench.log"
exit "${PIPESTATUS[0]}"
