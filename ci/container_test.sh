#!/usr/bin/env bash
# Build the job image (containers/Dockerfile) with podman on a registry-less Debian 12 machine,
# as root, and run one demo training job of the workflow inside it. Reruns reuse the cached
# layers (only the small package layer rebuilds when workflow/densebench changes).
#   WITH_APPTAINER=1  also convert the image to a SIF and run the same job through
#                     `snakemake --sdm apptainer --config container=<sif>` (Apptainer from
#                     ci/install_apptainer.sh; slow: the CUDA image is ~7 GB).
# Prints each step's time, the image size and the job's time; work files go to
# $CONTAINER_WORK. Exits non-zero, naming the step, on any failure.
# Findings behind the podman settings: shared/cluster/containers.md of the team.
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
W=${CONTAINER_WORK:-/tmp/densebench-container}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
IMG=${IMG:-localhost/densebench:ci}
BASE=localhost/debian:bookworm
CA=/etc/ssl/certs/ca-certificates.crt
TARGET=results/runs/demo_glands/demo_vit_p8/frozen/best.pt
mkdir -p "$W"
export DEBIAN_FRONTEND=noninteractive

t0=$(date +%s)
current="start"
current_t=$t0
timings=()
step() {
  local now
  now=$(date +%s)
  [ "$current" = start ] || timings+=("$current: $((now - current_t)) s")
  current=$1
  current_t=$now
  echo "== [$((now - t0))s] $1"
}
fail() {
  echo "container_test: FAILED in step '$current': $*" >&2
  exit 1
}
trap 'echo "container_test: FAILED in step '"'"'$current'"'"' (line $LINENO: $BASH_COMMAND)" >&2' ERR
cleanup() { rm -f "$W/image.tar"; }
trap cleanup EXIT

step "apt packages"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
  command -v apt-get >/dev/null || fail "podman, debootstrap and runc are missing, and there is no apt-get"
  exec 9>/tmp/densebench-apt.lock && flock -w 1800 9  # one apt-get at a time (the cluster test's)
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman buildah debootstrap runc uidmap \
    fuse-overlayfs slirp4netns containernetworking-plugins iptables ca-certificates >/dev/null
  flock -u 9
fi

# This VM: no CAP_SYS_RESOURCE (podman's default rlimits fail; podman caps its own NPROC at
# 32768) and a hybrid cgroup v1/v2 layout that crun refuses: runc and explicit ulimits.
hn=$(ulimit -Hn)
hu=$(ulimit -Hu)
if [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ]; then hu=32768; fi
if [ "$hn" = unlimited ] || [ "$hn" -gt 1048576 ]; then hn=1048576; fi
cat >"$W/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hn:$hn", "nproc=$hu:$hu"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$W/containers.conf

if ! podman image exists "$BASE"; then
  step "base image: debootstrap bookworm (no registry here)"
  rm -rf "$W/rootfs"
  debootstrap --variant=minbase bookworm "$W/rootfs" "$MIRROR" >"$W/debootstrap.log" 2>&1 ||
    { tail -20 "$W/debootstrap.log"; fail "debootstrap (log: $W/debootstrap.log)"; }
  rm -rf "$W"/rootfs/var/cache/apt/archives/*.deb "$W"/rootfs/var/lib/apt/lists/*
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "$MIRROR" >"$W/rootfs/etc/apt/sources.list"
  tar -C "$W/rootfs" -c . | podman import - "$BASE" >/dev/null
  rm -rf "$W/rootfs"
fi
# the Dockerfile keeps its FROM debian:bookworm-slim: the local base answers for it, nothing is
# pulled (--pull=never)
podman tag "$BASE" docker.io/library/debian:bookworm-slim docker.io/library/debian:bookworm

step "podman build containers/Dockerfile"
args=()
if [ -f "$CA" ]; then args+=(-v "$CA:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt); fi
# this machine kind's local package indexes (/etc/pip.conf), bound read-only for the build only
extra=()
for index in /opt/pypi /opt/pypi-more; do
  if [ -d "$index/simple" ]; then
    args+=(-v "$index:$index:ro")
    extra+=("file://$index/simple")
  fi
done
if [ ${#extra[@]} -gt 0 ]; then args+=(--build-arg "PIP_EXTRA_INDEX_URL=${extra[*]}"); fi
if [ -d /opt/wheels ]; then args+=(-v /opt/wheels:/opt/wheels:ro --build-arg PIP_FIND_LINKS=/opt/wheels); fi
build_start=$(date +%s)
podman build --pull=never --network host "${args[@]}" -t "$IMG" -f "$REPO/containers/Dockerfile" \
  "$REPO" >"$W/build.log" 2>&1 || { tail -40 "$W/build.log"; fail "podman build (log: $W/build.log)"; }
build_s=$(($(date +%s) - build_start))
# drop dangling images (the layers of older builds: GBs each); the current image's layers stay cached
podman image prune -f >/dev/null
size=$(podman image inspect "$IMG" --format '{{.Size}}' | awk '{printf "%.2f GB", $1 / 1e9}')
echo "build: $build_s s; image size: $size"
layers=$(podman history --format '{{.Size}}\t{{.CreatedBy}}' "$IMG" | awk -F'\t' '$1 != "0 B" && $1 != "0B" {
  sub(/^.*\/bin\/sh -c (#\(nop\) )?/, "", $2); printf "  %9s  %.70s\n", $1, $2 }')
echo "layers (newest first):"
echo "$layers"

step "the image: package, commands, no build leftovers"
podman run --rm --network none "$IMG" bash -c '
  set -e
  python3 -c "import densebench, torch, sys; print(sys.version.split()[0], densebench.__file__, torch.__version__, torch.version.cuda)"
  test ! -e /root/.cache/pip && test ! -e /run/host-ca.crt && test ! -e /opt/pypi && test ! -e /opt/wheels
  test ! -e /tmp/densebench && test -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)"
  test -z "${PIP_CERT:-}${PIP_EXTRA_INDEX_URL:-}${PIP_FIND_LINKS:-}${HF_HUB_OFFLINE:-}"
' >"$W/inspect.txt" 2>"$W/inspect.err" || { cat "$W/inspect.txt" "$W/inspect.err"; fail "the image holds build leftovers or lacks the package"; }
read -r py_version module torch_version cuda_version <"$W/inspect.txt"
case $module in /opt/venv/lib/python3.11/site-packages/densebench/*) ;; *) fail "densebench imported from $module" ;; esac
[ "$cuda_version" != None ] || fail "torch $torch_version in the image is not a CUDA build"
echo "image: python $py_version, torch $torch_version (CUDA $cuda_version), densebench in $(dirname "$module")"

step "one demo training job inside the image"
# The workflow's rules and configs, not the package: the Snakefile and the jobs must import
# densebench and run snakemake/densebench from the image's /opt/venv.
job=$W/job
rm -rf "$job"
mkdir -p "$job/workflow" "$job/.test"
cp -r "$REPO/Snakefile" "$REPO/config" "$REPO/envs" "$job/"
cp -r "$REPO/workflow/rules" "$REPO/workflow/schemas" "$job/workflow/"
cp -r "$REPO/.test/config" "$job/.test/"
job_start=$(date +%s)
podman run --rm --network none --shm-size=2g -v "$job:/work" -w /work "$IMG" bash -c \
  "command -v densebench snakemake > .test/commands.txt &&
   snakemake --directory .test --cores 1 $TARGET > .test/snakemake.log 2>&1" ||
  { tail -30 "$job/.test/snakemake.log"; fail "the demo job failed in the image (log: $job/.test/snakemake.log)"; }
job_s=$(($(date +%s) - job_start))
for f in best.pt train_log.csv provenance.json; do
  test -s "$job/.test/$(dirname "$TARGET")/$f" || fail "the job did not write $(dirname "$TARGET")/$f"
done
grep -qx /opt/venv/bin/densebench "$job/.test/commands.txt" || fail "densebench not from /opt/venv"
grep -qx /opt/venv/bin/snakemake "$job/.test/commands.txt" || fail "snakemake not from /opt/venv"
echo "job ran in the image: $(tr '\n' ' ' <"$job/.test/commands.txt")"
steps=$(grep -o '[0-9]* of [0-9]* steps (100%) done' "$job/.test/snakemake.log" | tail -1 || true)
echo "demo job in the image: $job_s s (snakemake: ${steps:-?})"

if [ "${WITH_APPTAINER:-0}" = 1 ]; then
  step "apptainer"
  command -v apptainer >/dev/null || bash "$REPO/ci/install_apptainer.sh" >"$W/apptainer-install.log" 2>&1 ||
    { tail -20 "$W/apptainer-install.log"; fail "installing apptainer (ci/install_apptainer.sh)"; }
  apptainer --version
  sif=$W/densebench.sif
  id=$(podman image inspect "$IMG" --format '{{.Id}}')
  if [ -s "$sif" ] && [ "$(cat "$sif.image-id" 2>/dev/null)" = "$id" ]; then
    echo "SIF of image ${id:0:12} already built: $sif"
  else
    step "SIF from the image (podman save + apptainer build)"
    rm -f "$W/image.tar" "$sif" "$sif.image-id"
    save_start=$(date +%s)
    podman save --format docker-archive -o "$W/image.tar" "$IMG" >"$W/save.log" 2>&1 ||
      { tail -20 "$W/save.log"; fail "podman save (log: $W/save.log)"; }
    sif_start=$(date +%s)
    # zstd: as small as mksquashfs's default gzip here and ~10x faster to make (this SIF is
    # the test's own; the README says how to make the one to publish)
    read -r -a squash <<<"${SIF_MKSQUASHFS_ARGS:--comp zstd -Xcompression-level 3}"
    apptainer build --force --mksquashfs-args "${squash[*]}" "$sif" "docker-archive://$W/image.tar" \
      >"$W/sif.log" 2>&1 || { tail -20 "$W/sif.log"; fail "apptainer build (log: $W/sif.log)"; }
    rm -f "$W/image.tar"
    echo "$id" >"$sif.image-id"
    echo "podman save: $((sif_start - save_start)) s; apptainer build (${squash[*]}): $(($(date +%s) - sif_start)) s"
  fi
  echo "SIF: $(du -h "$sif" | cut -f1)"
  apptainer exec --containall "$sif" bash -c 'command -v densebench snakemake' >"$W/sif-commands.txt" ||
    fail "apptainer exec in $sif"
  grep -qx /opt/venv/bin/densebench "$W/sif-commands.txt" || fail "densebench not on the SIF's PATH"
  step "snakemake --sdm apptainer: the same job in the SIF"
  smk=$REPO/.venv/bin/snakemake
  [ -x "$smk" ] || fail "no $smk: make venv first (Snakemake runs on the host, jobs in the SIF)"
  rm -rf "$job/.test/results" "$job/.test/resources" "$job/.test/logs" "$job/.test/.snakemake"
  sdm_start=$(date +%s)
  (cd "$job" && "$smk" --directory .test --cores 1 --sdm apptainer \
    --config container="$sif" -- "$TARGET" >"$W/apptainer-job.log" 2>&1) ||
    { tail -30 "$W/apptainer-job.log"; fail "the demo job under --sdm apptainer (log: $W/apptainer-job.log)"; }
  grep -q "Activating singularity image $sif" "$W/apptainer-job.log" || fail "the job did not run in $sif"
  test -s "$job/.test/$TARGET" || fail "no $TARGET from the job in the SIF"
  echo "demo job under --sdm apptainer: $(($(date +%s) - sdm_start)) s"
fi
step "done"
echo "timings: $(printf '%s; ' "${timings[@]}")total $(($(date +%s) - t0)) s"
