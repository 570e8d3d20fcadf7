"""The decision policy: response models, arbitration, explanations, evaluation."""
