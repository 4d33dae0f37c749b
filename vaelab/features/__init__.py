"""Feature networks for sample-quality metrics without internet: small CNN classifiers that vaelab trains and caches
per dataset (:mod:`.network`, :mod:`.train`, :mod:`.cache`), and the FID Inception network for weights the user
supplies (:mod:`.inception`)."""
from .cache import (INCEPTION, RECIPES, FeatureError, FeatureNetwork, folder, load_network, network_name,
                    save_network)
from .inception import FIDInceptionV3
from .network import FEATURE_LAYER, ClassifierCNN
from .train import Recipe, accuracy, train_classifier

__all__ = ["FeatureNetwork", "FeatureError", "load_network", "network_name", "save_network", "folder", "RECIPES",
           "INCEPTION", "Recipe", "train_classifier", "accuracy", "ClassifierCNN", "FIDInceptionV3", "FEATURE_LAYER"]
