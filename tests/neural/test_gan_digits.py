"""The default GAN on the 8×8 digits: samples that a classifier trained on the real digits
reads as all ten classes, none dominant, about as confidently as it reads held-out digits."""

import warnings

import numpy as np
import pytest

from latentspace.metrics import relative_diversity
from latentspace.neural import GAN


@pytest.mark.slow
def test_default_gan_samples_cover_all_ten_digits_and_look_like_digits():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.3,
                                                        stratify=digits.target, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gan = GAN(latent_dim=16, random_state=0).fit(X_train)
    assert not [w for w in caught if "mode collapse" in str(w.message)]
    assert not gan.mode_collapse_ and not gan.discriminator_won_
    # the oracle: a classifier of the real digits (about 97% accurate on the held-out rows)
    clf = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.9
    S = gan.sample(5000, random_state=1)
    assert S.min() >= 0 and S.max() <= 1
    proba = clf.predict_proba(S)
    share = np.bincount(proba.argmax(1), minlength=10) / len(S)
    # every class reached by at least 2% of the samples (a tenth of its due), none above 25%
    assert (share >= 0.02).all() and share.max() <= 0.25, share
    # digit-like: read as confidently as real held-out digits, up to 25% less; pure noise or
    # blends of several digits are read with much lower confidence
    conf_samples, conf_real = proba.max(1).mean(), clf.predict_proba(X_test).max(1).mean()
    assert conf_samples >= 0.75 * conf_real, (conf_samples, conf_real)
    # and about as close to the training digits as held-out digits are (not noise)
    def nearest(A):
        d2 = (A**2).sum(1)[:, None] + (X_train**2).sum(1)[None] - 2 * A @ X_train.T
        return np.sqrt(np.maximum(d2, 0).min(1))

    assert np.median(nearest(S[:1000])) <= 1.5 * np.median(nearest(X_test))
    assert relative_diversity(S[:1000], X_train) > 0.7
