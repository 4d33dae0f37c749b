#!/usr/bin/env bash
# The main job: set up, train the default VAE on Fashion-MNIST, evaluate it (with the sample quality of 10,000 samples,
# on vaelab's Fashion-MNIST feature network: trained once into the user's cache), draw its pictures.
#   bash scripts/main.sh                 # runs/fashion-vae, 20 epochs (about a minute of training on 2 cores)
#   EPOCHS=50 OUT=runs/long bash scripts/main.sh
set -euo pipefail
source "$(dirname "$0")/setup.sh"

OUT=${OUT:-runs/fashion-vae}
EPOCHS=${EPOCHS:-20}
if [ -f "$OUT/config.yaml" ]; then
    vaelab train --resume "$OUT" --epochs "$EPOCHS"      # continues (or finds it complete)
else
    vaelab train --model vae --dataset fashion-mnist --epochs "$EPOCHS" --out "$OUT"
fi
vaelab features train --dataset fashion-mnist          # once: later runs find it in the cache
vaelab eval "$OUT" --sample-quality
vaelab sample "$OUT" --n 64
vaelab reconstruct "$OUT"
vaelab interpolate "$OUT"
vaelab traverse "$OUT"
echo "done: $OUT/eval.json, $OUT/curves.png, $OUT/samples.png, $OUT/reconstructions.png," \
     "$OUT/interpolation.png, $OUT/traversal.png"
