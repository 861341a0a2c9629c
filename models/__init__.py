"""The relapse-risk model: config, datasets, rule / logistic / LightGBM models, evaluation, training."""
