#!/usr/bin/env bash
# One prepared run that proves the CUDA path and brings back every figure in one go (issue 15).
#
#   benchmarks/gpu_check.sh --prepare            here, beside ../shared, before carrying (once; ~45 MB)
#   benchmarks/gpu_check.sh --out PATH           on the CUDA machine: under 8 minutes
#   benchmarks/gpu_check.sh --dry-run --out PATH anywhere, on CPU at tiny sizes: the same steps
#
# The device machine receives the repository alone, never ../shared. --prepare fills the git-ignored
# .gpu-check/shared/ with what the run reads from ../shared: the referee (bench/gatys_reference.py), the two
# benchmark pictures with their credits, and the stand-in real weights cut to what relu5_1 needs (conv5_2..5_4
# are never read: stored as zeros of no size; exact 0/1 identity convolutions stored as fp16, which holds them
# exactly). Carry `.gpu-check` with the call. Where ../shared has the referee, it is used instead.
#
# Steps, in order of value, each with its own time limit inside an overall 7.5 minutes (a step that would
# start too late is recorded as skipped): environment; the CUDA-marked tests (tests/test_cuda.py);
# benchmarks/speed.py at 512 px, single and 5-variant strip, bf16 and TF32 (precision fp32 on CUDA), with
# random and stand-in real weights; benchmarks/default_request.py (the bot's GPU default request: strip of 256
# px tiles, 1024 px result, a redo, an Upscale, a fresh 300-step paint); benchmarks/peak_memory.py at 1024 and
# 2048 px (limit 12 GiB).
# Everything is printed and written to --out (default gpu_check.txt); the JSON lines are repeated at the end,
# then one line per step with its exit status. Exit status: 0 when every step passed, 1 otherwise.
#
# Python: $PYTHON, else the repo's .venv/bin/python when it imports torch, else python3 (the device image's,
# which has torch, torchvision, Pillow and pytest). --wheels DIR installs DIR/*.whl into a private folder first.
set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
OUT_FILE="gpu_check.txt"
DRY_RUN=0
PREPARE=0
WHEELS=""
SHARED_DIR=""
BUDGET_S=450

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT_FILE="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --prepare) PREPARE=1; shift ;;
        --wheels) WHEELS="$2"; shift 2 ;;
        --shared) SHARED_DIR="$2"; shift 2 ;;
        --budget-s) BUDGET_S="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    # The repo's venv is a link to a CPU build on the build machine; on the device it dangles.
    if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then
        echo "$REPO/.venv/bin/python"; return
    fi
    echo python3
}
PY="$(pick_python)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [ "$PREPARE" = 1 ]; then
    source_dir="${STYLIZER_SHARED:-$REPO/../shared}"
    if [ ! -f "$source_dir/weights/vgg16_imagenet_as_vgg19.pth" ]; then
        echo "gpu_check.sh --prepare: no ../shared at $source_dir; set STYLIZER_SHARED=/path/to/shared" >&2
        exit 2
    fi
    target="${SHARED_DIR:-$REPO/.gpu-check/shared}"
    mkdir -p "$target/bench" "$target/images/content" "$target/images/style" "$target/weights" || exit 2
    cp -f "$source_dir/README.md" "$target/" &&
        cp -f "$source_dir/bench/gatys_reference.py" "$target/bench/" &&
        cp -f "$source_dir/images/SOURCES.md" "$target/images/" &&
        cp -f "$source_dir/images/content/chelsea.jpg" "$target/images/content/" &&
        cp -f "$source_dir/images/style/vangogh_wheat_field_with_cypresses.jpg" "$target/images/style/" &&
        cp -f "$source_dir/weights/README.md" "$target/weights/" || exit 2
    "$PY" - "$source_dir/weights/vgg16_imagenet_as_vgg19.pth" \
        "$target/weights/vgg16_imagenet_as_vgg19_to_relu5_1.pth" <<'EOF' || exit 2
import sys
import torch
source, target = sys.argv[1:]
state = torch.load(source, map_location="cpu", weights_only=True)
LAST_READ = 29  # relu5_1: the deepest layer any loss reads
compact = {}
for key, tensor in state.items():
    if int(key.split(".")[1]) > LAST_READ:
        compact[key] = torch.zeros((), dtype=tensor.dtype).expand(tensor.shape)  # shape only
    elif torch.equal(tensor.half().float(), tensor):
        compact[key] = tensor.half()  # exactly representable: the identity convolutions, zero biases
    else:
        compact[key] = tensor
torch.save(compact, target)
again = torch.load(target, map_location="cpu", weights_only=True)
for key, tensor in state.items():
    assert again[key].shape == tensor.shape, key
    if int(key.split(".")[1]) <= LAST_READ:
        assert torch.equal(again[key].float(), tensor), key
print(f"wrote {target}: every tensor up to relu5_1 equal to {source}")
EOF
    du -sh "$target"
    exit 0
fi

if [ -n "$WHEELS" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu-check-site "$WHEELS"/*.whl || exit 2
    export PYTHONPATH="$PYTHONPATH:/tmp/gpu-check-site"
fi

if [ "$DRY_RUN" = 1 ]; then
    DEVICE=cpu SPEED_SIZE=96 SPEED_STEPS=4 VARIANTS=2 PEAK_SIZES="96 256" PEAK_STEPS=4 LIMIT_GIB=12
    REQUEST_SIZES="--size 64 --steps 3 --strip-size 32 --strip-steps 3 --fresh-steps 3"
else
    DEVICE=cuda SPEED_SIZE=512 SPEED_STEPS=300 VARIANTS=5 PEAK_SIZES="1024 2048" PEAK_STEPS=10 LIMIT_GIB=12
    REQUEST_SIZES=""  # the GPU's [style] defaults: a 1024 px result from 256 px tiles
    if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "gpu_check.sh: $PY sees no CUDA device; --dry-run runs the same steps on CPU" >&2
        exit 2
    fi
fi

# After the CUDA check: a machine without a GPU hears that first, whatever else it lacks.
if [ -z "$SHARED_DIR" ]; then
    if [ -f "$REPO/../shared/bench/gatys_reference.py" ]; then SHARED_DIR="$REPO/../shared"
    else SHARED_DIR="$REPO/.gpu-check/shared"; fi
fi
if [ ! -f "$SHARED_DIR/bench/gatys_reference.py" ]; then
    echo "gpu_check.sh: no referee at $SHARED_DIR/bench; run benchmarks/gpu_check.sh --prepare where" \
        "../shared is, and carry .gpu-check" >&2
    exit 2
fi
SHARED_DIR="$(cd "$SHARED_DIR" && pwd)"
export STYLIZER_SHARED="$SHARED_DIR"
REAL_WEIGHTS="$SHARED_DIR/weights/vgg16_imagenet_as_vgg19.pth"
[ -f "$REAL_WEIGHTS" ] || REAL_WEIGHTS="$SHARED_DIR/weights/vgg16_imagenet_as_vgg19_to_relu5_1.pth"

mkdir -p "$(dirname "$OUT_FILE")" && : >"$OUT_FILE" || exit 2
STARTED=$SECONDS
STATUS=()
FAILED=0

# step NAME LIMIT_S COMMAND...: run it under its own limit, or skip it when the overall budget is spent.
step() {
    local name="$1" limit="$2" left rc began
    shift 2
    left=$((BUDGET_S - (SECONDS - STARTED)))
    echo "=== $name ===" | tee -a "$OUT_FILE"
    if [ "$left" -lt 20 ]; then
        echo "skipped: the ${BUDGET_S} s budget is spent" | tee -a "$OUT_FILE"
        STATUS+=("$name: skipped (budget)"); FAILED=1; return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    began=$SECONDS
    # A new bash, so that the limit also holds for the functions below (exported with their variables).
    timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" 2>&1 | tee -a "$OUT_FILE"
    rc=${PIPESTATUS[0]}
    STATUS+=("$name: rc $rc, $((SECONDS - began)) s")
    [ "$rc" -eq 0 ] || FAILED=1
}

environment() {
    echo "mode $([ "$DRY_RUN" = 1 ] && echo dry-run || echo cuda); python $PY; shared $SHARED_DIR"
    echo "git $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git status --porcelain 2>/dev/null | wc -l) changed files"
    if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; fi
    "$PY" -c "import platform, torch, torchvision, PIL; print('python', platform.python_version(), 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'pillow', PIL.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
}

speed() {  # speed WEIGHTS PRECISION
    "$PY" benchmarks/speed.py --device "$DEVICE" --size "$SPEED_SIZE" --steps "$SPEED_STEPS" \
        --variants "$VARIANTS" --weights "$1" --precision "$2"
}

peak() {  # peak WEIGHTS
    # shellcheck disable=SC2086  # the sizes are words
    "$PY" benchmarks/peak_memory.py --device "$DEVICE" --sizes $PEAK_SIZES --steps "$PEAK_STEPS" \
        --variants "$VARIANTS" --weights "$1" --precision bf16 --limit-gib "$LIMIT_GIB"
}

default_request() {  # default_request WEIGHTS: the bot's default request, a redo and an Upscale, and a fresh paint
    # shellcheck disable=SC2086  # the options are words
    "$PY" benchmarks/default_request.py --device "$DEVICE" --weights "$1" $REQUEST_SIZES
}

export PY DEVICE SPEED_SIZE SPEED_STEPS VARIANTS PEAK_SIZES PEAK_STEPS LIMIT_GIB DRY_RUN SHARED_DIR REQUEST_SIZES
export -f environment speed peak default_request
step environment 30 environment
step cuda-tests 150 "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs tests/test_cuda.py
step speed-random-bf16 120 speed random bf16
step peak-memory-random-bf16 90 peak random
step speed-real-bf16 120 speed "$REAL_WEIGHTS" bf16
step default-request-real 150 default_request "$REAL_WEIGHTS"
step speed-random-tf32 120 speed random fp32
step speed-real-tf32 120 speed "$REAL_WEIGHTS" fp32
step peak-memory-real-bf16 90 peak "$REAL_WEIGHTS"

{
    echo "=== json ==="
    grep '^{' "$OUT_FILE"
    echo "=== status ==="
    printf '%s\n' "${STATUS[@]}"
    echo "total $((SECONDS - STARTED)) s; $([ "$FAILED" = 0 ] && echo 'every step passed' || echo 'SOME STEP FAILED')"
} >"$OUT_FILE.tail"
tee -a "$OUT_FILE" <"$OUT_FILE.tail"
rm -f "$OUT_FILE.tail"
exit "$FAILED"
