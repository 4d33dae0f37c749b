#!/usr/bin/env bash
# README's anomaly-detection tables at a small budget (2 shared CPU cores): a Fashion-MNIST VAE scoring MNIST
# (with a background model for the likelihood ratio), and one-class MNIST (each digit normal, the others anomalous).
#   bash scripts/anomaly.sh        # runs/anomaly, README's budget (about 20 minutes on 2 busy cores with OMP_NUM_THREADS=1)
set -euo pipefail
source "$(dirname "$0")/setup.sh"

OUT=${OUT:-runs/anomaly}
STEPS=${STEPS:-3000}
BG_STEPS=${BG_STEPS:-1500}
N=${N:-2000}
K=${K:-50}
ONE_CLASS_STEPS=${ONE_CLASS_STEPS:-500}
ONE_CLASS_N=${ONE_CLASS_N:-500}
ONE_CLASS_K=${ONE_CLASS_K:-10}

# Fashion-MNIST -> MNIST: the default VAE (discretized logistic), and a background model on perturbed inputs
train_steps "$OUT/fashion" "$STEPS" --model vae --dataset fashion-mnist
train_steps "$OUT/fashion-background" "$BG_STEPS" --model vae --dataset fashion-mnist --set data.perturb=0.2
vaelab anomaly "$OUT/fashion" --anomalous mnist --background "$OUT/fashion-background" --n "$N" --k "$K" \
    --regret-steps 50

# One-class MNIST (Bernoulli VAE on dynamically binarized digits): digit d normal, the nine others anomalous
for d in 0 1 2 3 4 5 6 7 8 9; do
    train_steps "$OUT/mnist-$d" "$ONE_CLASS_STEPS" --model vae --dataset mnist --set "data.classes=[$d]"
    vaelab anomaly "$OUT/mnist-$d" --n "$ONE_CLASS_N" --k "$ONE_CLASS_K"
done
