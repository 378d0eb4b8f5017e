#!/usr/bin/env bash
# Train on a lent GPU machine (JAX, no TensorFlow, Keras or network): run in the repository root there,
# by the second of the two `run` calls that carry the data (docs/training_log.md, "A GPU run"):
#
#   call 1: carry [".gpu/part1"]                  command: ls .gpu/part1
#   call 2: carry [".gpu/part2", ".whl"]           command: bash train/gpu_run.sh --arch fer_vgg --epochs 200 ...
#
# Options go to `python -m train train` unchanged (--data and --out are set here). The run folder comes
# back under $OUT/gpu_run; convert and publish it on the CPU afterwards (fer-edge publish, fer-edge convert).
set -euo pipefail
WHEELS=${WHEELS:-.whl}
PACK=${PACK:-.gpu}
DATA=${DATA:-/tmp/fer2013}
SITE=${SITE:-/tmp/fer-edge-site}
OUT=${OUT:-runs}

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
python3 -m train.gpu_pack unpack "$PACK" "$DATA"
python3 -c 'import jax, keras; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__, keras.backend.backend())'
mkdir -p "$OUT"
python3 -m train train --data "$DATA" --out "$OUT/gpu_run" "$@" 2>&1 | tee "$OUT/gpu_run.log"
