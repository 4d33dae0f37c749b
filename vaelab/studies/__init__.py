"""Studies and applications over trained runs: anomaly detection (:mod:`.anomaly`) and missing-data imputation
(:mod:`.imputation`). Each returns data and figures for the command line and the app, above :mod:`vaelab.api`."""
