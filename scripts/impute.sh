#!/usr/bin/env bash
# README's imputation table at a small budget (2 shared CPU cores): on dynamically binarized MNIST with half of the
# pixels missing at random, a VAE trained on complete data, one trained by MIWAE on incomplete data, and a plain
# autoencoder (WAE-MMD with lambda = 0) as the baseline.
#   bash scripts/impute.sh         # runs/impute, README's budget (about 5 minutes on 2 busy cores)
set -euo pipefail
source "$(dirname "$0")/setup.sh"

OUT=${OUT:-runs/impute}
STEPS=${STEPS:-300}
N=${N:-300}

train_steps "$OUT/vae" "$STEPS" --model vae --dataset mnist
train_steps "$OUT/miwae" "$STEPS" --model vae --dataset mnist --objective miwae --k 5 --set objective.miwae.rate=0.5
train_steps "$OUT/ae" "$STEPS" --model wae-mmd --dataset mnist --set objective.wae.lam=0
for run in vae miwae; do
    for method in pseudo-gibbs mwg importance; do
        vaelab impute "$OUT/$run" --mask random:0.5 --method "$method" --n "$N" --baseline "$OUT/ae"
    done
done
vaelab impute "$OUT/vae" --mask half-top --method mwg --n "$N" --baseline "$OUT/ae"
