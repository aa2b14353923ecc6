"""latentspace's adversarial reliability campaign; run ``python -m campaign`` (see run.py)."""
