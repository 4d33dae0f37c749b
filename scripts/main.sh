#!/usr/bin/env bash
# The main job: set up, train the default VAE on Fashion-MNIST, evaluate it (NLL by importance sampling; the sample
# quality of 10,000 samples on vaelab's Fashion-MNIST feature network, trained once into the user's cache), draw its
# pictures.
#   bash scripts/main.sh                 # runs/fashion-vae, 20 epochs (README: what it measured, how long it took)
#   EPOCHS=50 OUT=runs/long bash scripts/main.sh
# The default model scores Fashion-MNIST's 8-bit grey pixels with a discretized logistic (PixelCNN++'s likelihood,
# one component): its negative ELBO and NLL are code lengths of the images themselves, so `vaelab eval` prints them
# in bits per dimension too, and MSE/PSNR/SSIM compare the decoder's mean with the grey test images.
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
vaelab eval "$OUT" --nll-samples 100 --sample-quality  # + NLL by importance sampling (k = 100), in bits/dim
vaelab sample "$OUT" --n 64
vaelab reconstruct "$OUT"                               # grey test images above their reconstructions
vaelab interpolate "$OUT"
vaelab traverse "$OUT"
echo "done: $OUT/eval.json, $OUT/curves.png, $OUT/samples.png, $OUT/reconstructions.png," \
     "$OUT/interpolation.png, $OUT/traversal.png"
