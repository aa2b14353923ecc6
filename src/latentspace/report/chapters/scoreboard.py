"""Chapter: the scoreboard — every generative model of the tour scored on the same held-out rows.

PCA, mixtures, the VAE and the GAN are all models of p(x). Here each is fitted on the tour's
shared split (``ctx.holdout().train``) and judged on the same ``test`` rows: by its exact
log-likelihood where it has one, by the VAE's importance-weighted bound, and — for every model,
and for the ``reference`` rows of real data that no model has seen, scored as if they were a
model's samples — by sample-based measures: a Parzen-window log-likelihood in pixel space, and
the Fréchet distance, k-NN precision/recall and class coverage in the feature space of a small
classifier the chapter trains itself on the dataset's labels (whitened principal coordinates for
unlabelled data). Every sample-based number uses the same number of samples per row, except
that the classes are counted among 5000 samples of each model (the real rows: the reference
pool).

The fitted models, the feature map and the table's values are left in
``ctx.results["scoreboard"]``; its ``"summary"`` entry is the top-level ``scoreboard`` section of
``summary.json`` (keys documented in ``docs/decisions.md``).
"""

from __future__ import annotations


import numpy as np

from ...decomposition import PCA
from ...metrics import class_coverage, frechet_distance, parzen_window_score, precision_recall
from ...mixture import BernoulliMixture
from ...neural import GAN
from .._chapter import Chapter, Figure, Table, TourContext
from .._scoring import (
    COLUMNS,
    ROWS,
    SANITY_COLUMNS,
    FeatureClassifier,
    PCAGaussianMixture,
    WhitenedPCAFeatures,
    failed,
    sanity_failures,
    sanity_text,
)

KEY = "scoreboard"
TITLE = "Scoreboard: one held-out set, every model"
EXPECTED_SECONDS = (2.4, 1.8)  # on digits, one torch thread, 2 cores (full, quick run)

PPCA_VARIANCE = 0.9  # PPCA keeps the fewest components explaining this share of the variance
GMM_MAX_PCS = 100  # the mixture lives on PPCA's principal coordinates, at most this many ...
GMM_REG = 1e-2  # ... with this ridge on its covariances (in whitened units: 1% of a variance)
MAX_K = 10  # mixture components: one per class up to this many; this many without labels
PR_K = 3  # the k of the k-NN balls (Kynkäänniemi et al.)
CLASSIFIER_ROWS = 10000  # the feature classifier trains on at most this many non-held-out rows
CLASSIFIER_HIDDEN = (256, 64)  # its hidden layers; features = the last one
CLASSIFIER_STEPS = (1000, 500)  # Adam steps (full, quick)
FEATURE_PCS = 32  # unlabelled data: whitened principal coordinates used as features
SAMPLES_SHOWN = 10  # samples of each row in the figure
IW_SAMPLES = (200, 20)  # importance samples of the VAE's bound (full, quick), as in its chapter
CLASS_SAMPLES = (5000, 2000)  # samples of each model whose classes are counted (full, quick)
FRECHET_BOOTSTRAP = 50  # bootstrap replicates behind the Fréchet distance's standard error

_INTRO = (
    "Every model of this tour is a model of p(x). This chapter fits each on the same training "
    "rows and scores it on the same held-out test rows: by its exact log-likelihood where it "
    "has one, by a bound for the VAE, and for every model by its samples, measured against the "
    "test rows. The last row scores real held-out images as if they were a model's samples: "
    "no model should beat it on a sample-based column."
)
_FORMULA = (
    "exact:   (1/n) Σ_test log p(x)      (PPCA, GMM: densities; BMM: a mass on binary images)\n"
    "VAE:     (1/n) Σ_test log (1/K) Σ_k p(x, z_k)/q(z_k|x)  ≤ log p(x)\n"
    "Parzen:  log p̂(x) = logsumexp_i(−‖x − s_i‖²/2σ²) − log m − (d/2) log 2πσ²  (σ on val)\n"
    "Fréchet: ‖μ_s − μ_t‖² + tr(Σ_s + Σ_t − 2 (Σ_s Σ_t)^½)   in feature space f(x)\n"
    "precision = share of samples in ∪ B(f(x_t), r₃(x_t)),  recall = share of test rows in "
    "∪ B(f(s), r₃(s))"
)



def n_mixture_components(y) -> int:
    """One component per class for labelled data (at most :data:`MAX_K`), else MAX_K."""
    return MAX_K if y is None else int(min(len(np.unique(y)), MAX_K))


def fit_density_models(ctx: TourContext) -> dict:
    """PPCA, the principal-coordinate Gaussian mixture and the Bernoulli mixture, fitted on
    ``ctx.holdout().train`` -> {"ppca": PCA, "gmm": PCAGaussianMixture, "bmm": BernoulliMixture}.
    """
    split = ctx.holdout()
    train, K = split.train, n_mixture_components(split.y_train)
    ctx.progress("PPCA")
    ppca = PCA(PPCA_VARIANCE, random_state=ctx.random_state).fit(train)
    ctx.progress("Gaussian mixture on principal coordinates")
    L = int(min(ppca.n_components_, GMM_MAX_PCS))
    gmm = PCAGaussianMixture(K, n_pcs=L, reg_covar=GMM_REG,
                             random_state=ctx.random_state).fit(train)
    ctx.progress("Bernoulli mixture")
    bmm = BernoulliMixture(K, binarize=0.5, init_params="k-means++", device=ctx.device,
                           random_state=ctx.random_state).fit(train)
    return {"ppca": ppca, "gmm": gmm, "bmm": bmm}


def _neural_models(ctx: TourContext) -> tuple[dict, dict]:
    """The VAE and the GAN: reused from their chapters when those ran, else fitted here on
    the split's train rows -> ({"vae": VAE, "gan": GAN}, {"vae": source, "gan": source})."""
    d = ctx.X.shape[1]
    models, sources = {}, {}
    vae = ctx.results.get("vae")
    if vae is not None and getattr(vae, "n_features_in_", None) == d:
        models["vae"], sources["vae"] = vae, "the VAE chapter's model"
    else:
        from ...plotting import pyplot
        from . import vae as vae_chapter

        ctx.progress("VAE (as in its chapter)")
        chapter = vae_chapter.run(ctx)  # the same model, fitted on the split's train rows
        for f in chapter.figures:
            pyplot().close(f.figure)
        models["vae"], sources["vae"] = ctx.results["vae"], "fitted here as in the VAE chapter"
    gan = ctx.results.get("gan")
    if gan is not None and getattr(gan, "n_features_in_", None) == d:
        models["gan"], sources["gan"] = gan, "the GAN chapter's model"
    else:
        ctx.progress("GAN (defaults, latent_dim=16)")
        models["gan"] = GAN(16, device=ctx.device, random_state=ctx.random_state).fit(
            ctx.holdout().train)
        sources["gan"] = "fitted here: GAN(latent_dim=16), defaults"
    return models, sources


# ----------------------------------------------------------------------------- feature space
def fit_feature_space(ctx: TourContext):
    """The feature map of the sample-based columns -> (map, description dict).

    Labelled data: :class:`FeatureClassifier` on up to :data:`CLASSIFIER_ROWS` seeded rows
    outside ``val``, ``test`` and ``reference``; its accuracy on the ``test`` rows is
    reported. Unlabelled data: :class:`WhitenedPCAFeatures` of the ``train`` rows.
    """
    split = ctx.holdout()
    if ctx.y is None:
        k = int(min(FEATURE_PCS, *split.train.shape))
        fmap = WhitenedPCAFeatures(k, random_state=ctx.random_state).fit(split.train)
        return fmap, {"kind": "whitened_pca", "dim": fmap.dim_, "n_fit_rows": len(split.train),
                      "description": f"top {fmap.dim_} principal coordinates of the training "
                                     "rows, whitened"}
    ctx.progress("feature classifier")
    rest = split.rest_index
    assert rest is not None  # TourContext.holdout() always records the rest
    if len(rest) > CLASSIFIER_ROWS:
        rest = np.sort(np.random.RandomState(ctx.random_state).choice(
            rest, CLASSIFIER_ROWS, replace=False))
    fmap = FeatureClassifier(n_steps=CLASSIFIER_STEPS[1 if ctx.quick else 0],
                             random_state=ctx.random_state).fit(ctx.X[rest], ctx.y[rest])
    sizes = "-".join(str(s) for s in (ctx.X.shape[1], *fmap.hidden, len(fmap.classes_)))
    return fmap, {
        "kind": "classifier", "dim": fmap.dim_, "n_fit_rows": int(len(rest)),
        "architecture": sizes,
        "test_accuracy": fmap.accuracy(split.test, split.y_test),
        "description": f"last hidden layer ({fmap.dim_} ReLU units) of a {sizes} MLP "
                       f"classifier trained on {len(rest)} labelled non-held-out rows",
    }


# ----------------------------------------------------------------------------- scoring
def _draw(key, model, n, seed) -> np.ndarray:
    """n samples of a model: mixtures also return labels, the VAE gives decoder means."""
    S = model.sample(n, random_state=seed)
    return np.asarray(S[0] if key in ("gmm", "bmm") else S, dtype=np.float64)


def frechet_se(F, F_test, seed: int = 0) -> float:
    """Bootstrap standard error of ``frechet_distance(F, F_test)``: both sets resampled with
    replacement, :data:`FRECHET_BOOTSTRAP` times (the distance has no closed-form error)."""
    rng = np.random.RandomState(seed)
    reps = [frechet_distance(F[rng.randint(0, len(F), len(F))],
                             F_test[rng.randint(0, len(F_test), len(F_test))])
            for _ in range(FRECHET_BOOTSTRAP)]
    return float(np.std(reps, ddof=1))


def sample_scores(S, split, fmap, F_test, n_classes, S_classes=None, seed: int = 0) -> dict:
    """The sample-based columns for samples ``S`` (n, d) against the split's test rows; the
    classes are counted among ``S_classes`` (default ``S``)."""
    pz = parzen_window_score(S, split.val, split.test)
    F = fmap.features(S)
    pr = precision_recall(F_test, F, k=PR_K)
    p, r = pr["precision"], pr["recall"]
    row = {"parzen": pz["mean"], "parzen_se": pz["se"], "parzen_sigma": pz["sigma"],
           "frechet": frechet_distance(F, F_test), "frechet_se": frechet_se(F, F_test, seed),
           "precision": p, "recall": r, "pr_f1": 2 * p * r / (p + r) if p + r > 0 else 0.0}
    if hasattr(fmap, "predict"):
        # among the same n samples as every other column (what the sanity check compares),
        # and among the many samples of the class columns
        row["classes_found_n"] = class_coverage(fmap.predict(S), n_classes)["classes_found"]
        cov = class_coverage(fmap.predict(S if S_classes is None else S_classes), n_classes)
        row["classes_found"] = cov["classes_found"]
        row["largest_class_share"] = cov["largest_class_share"]
    return row


def reading_text(rows: dict, labelled: bool) -> str:
    """A short reading of the table for a student, naming the best model of each column."""
    models = [k for k in ROWS if k != "real"]

    def best(col, higher=True):
        have = [k for k in models if rows[k].get(col) is not None]
        k = (max if higher else min)(have, key=lambda k: rows[k][col])
        return f"{ROWS[k]} ({rows[k][col]:.4g})"

    ll = [k for k in models if "log_likelihood" in rows[k]]
    return (
        "How to read it. Only the exact densities compare with one another: "
        f"{' and '.join(ROWS[k] for k in ll)} are densities in the same pixel space, so the "
        f"higher held-out log-likelihood wins ({best('log_likelihood')}). The Bernoulli "
        "mixture's number is a probability mass on binarised images and the VAE's bound is for a "
        "Bernoulli decoder on grey levels: neither is on the densities' scale. The sample-based "
        "columns compare every row, the real one included, because they only look at samples: "
        f"Parzen log-likelihood (higher is better; best model {best('parzen')}), Fréchet "
        f"distance in the feature space (lower is better; best "
        f"{best('frechet', higher=False)}), precision (are samples realistic? best "
        f"{best('precision')}) and recall (is the data covered? best {best('recall')})"
        + (", and the classes a classifier finds among the samples. The largest class's share "
           "is not ranked — a share below the real rows' is no better — but a share far above "
           "it flags mode collapse." if labelled else ".")
        + " Precision and recall must be read together: blurry or collapsed samples can be "
        "precise without covering the data, and noisy ones can cover it without looking real. "
        "The sample-based numbers are noisy estimates "
        "(Parzen gives its standard error) and depend on the number of samples, which is the "
        "same for every row."
    )


def run(ctx: TourContext) -> Chapter:
    split = ctx.holdout()
    n = len(split.reference)
    if n <= PR_K or len(split.test) <= PR_K:
        raise ValueError(
            f"the scoreboard needs more than {PR_K} reference and test rows; this dataset "
            f"gives {n} (10% of {len(ctx.X)} rows). Use a dataset of at least "
            f"{10 * (PR_K + 1)} rows."
        )
    models = fit_density_models(ctx)
    neural, sources = _neural_models(ctx)
    models.update(neural)
    fmap, feature_space = fit_feature_space(ctx)
    labelled = feature_space["kind"] == "classifier"
    n_classes = len(fmap.classes_) if labelled else None
    F_test = fmap.features(split.test)

    rows: dict[str, dict] = {}
    shown: dict[str, np.ndarray] = {}
    ctx.progress("exact log-likelihoods")
    rows["ppca"] = {"log_likelihood": models["ppca"].score(split.test)}
    rows["gmm"] = {"log_likelihood": models["gmm"].score(split.test)}
    rows["bmm"] = {"log_mass": models["bmm"].score(split.test)}
    K = IW_SAMPLES[1 if ctx.quick else 0]
    ctx.progress(f"VAE importance-weighted bound, K={K}")
    rows["vae"] = {"iw_bound": float(np.mean(models["vae"].score_samples(
        split.test, n_importance=K, random_state=ctx.random_state)))}
    rows["gan"] = {}
    rows["real"] = {}
    n_classes_samples = CLASS_SAMPLES[1 if ctx.quick else 0]
    for key in ROWS:
        ctx.progress(f"sample-based scores: {ROWS[key]}")
        if key == "real":
            S = S_classes = split.reference
        else:
            # the first n of the draw are the samples of every other column
            S_classes = _draw(key, models[key], max(n, n_classes_samples), ctx.random_state)
            S = S_classes[:n]
        rows[key].update(sample_scores(S, split, fmap, F_test, n_classes,
                                       S_classes if labelled else None, ctx.random_state))
        shown[key] = S[:SAMPLES_SHOWN]
    failures = sanity_failures(rows, n, len(split.test), n_classes)
    bad = failed(failures)

    columns = [c for c in COLUMNS if any(c in r for r in rows.values())]
    table = Table(
        caption=(f"Every model scored on the same {len(split.test)} held-out test rows of "
                 f"{ctx.name}; sample-based columns from {n} samples per row"
                 + (f", classes among {max(n, n_classes_samples)} samples of each model and "
                    f"the {n} real rows." if labelled else ".")),
        columns=[COLUMNS[c][0] for c in columns],
        rows=[(ROWS[k], [rows[k].get(c) for c in columns]) for k in ROWS],
        notes="\n\n".join([sanity_text(failures, rows), reading_text(rows, labelled),
                             _notes(ctx, models, feature_space, n, K)]),
    )
    summary = {
        "models": rows,
        "columns": [{"key": c, "label": COLUMNS[c][0], "sample_based": COLUMNS[c][1],
                     "better": COLUMNS[c][2]} for c in columns],
        "feature_space": feature_space,
        "n_samples": n,
        "n_class_samples": {"models": max(n, n_classes_samples), "real": n} if labelled else None,
        "n_classes": n_classes,
        "split": {"train": len(split.train), "val": len(split.val), "test": len(split.test),
                  "reference": n},
        "sources": sources,
        "settings": {"ppca_components": int(models["ppca"].n_components_),
                     "gmm_components": int(models["gmm"].n_components),
                     "gmm_pcs": int(models["gmm"].n_pcs),
                     "gmm_noise_variance": models["gmm"].noise_variance_,
                     "bmm_components": int(models["bmm"].n_components),
                     "iw_samples": K, "precision_recall_k": PR_K},
        "sanity": {"columns": list(SANITY_COLUMNS),
                   "real_best_on_sample_columns": not bad,
                   "failed": len(bad),
                   "leads": failures},
    }
    ctx.results["scoreboard"] = {"models": models, "feature_map": fmap, "summary": summary}

    numbers = {
        "training / validation / test / reference rows":
            f"{len(split.train)} / {len(split.val)} / {len(split.test)} / {n}",
        "samples per row (every sample-based column but the classes)": n,
        "feature space": feature_space["description"],
    }
    if labelled:
        numbers["feature classifier: accuracy on the test rows"] = feature_space["test_accuracy"]
    numbers["PPCA components (90% of the variance)"] = int(models["ppca"].n_components_)
    numbers["real rows best on every sample-based column (the sanity check)"] = not bad
    figures = []
    if ctx.X.shape[1] == ctx.image_shape[0] * ctx.image_shape[1]:
        figures.append(_samples_figure(ctx, shown))
    return Chapter(key=KEY, title=TITLE, intro=_INTRO, formula=_FORMULA, numbers=numbers,
                   tables=[table], figures=figures)


def _samples_figure(ctx: TourContext, shown: dict) -> Figure:
    """The first samples of every row of the table, one model per row of the grid."""
    from ...plotting import ImageGridDisplay

    keys = list(shown)
    k = min(len(v) for v in shown.values())
    images = np.concatenate([np.clip(shown[key][:k], 0.0, 1.0) for key in keys])
    h, w = ctx.image_shape
    cell = 0.7  # inches per image
    grid = ImageGridDisplay.from_data(images, ctx.image_shape, n_cols=k, vmin=0.0, vmax=1.0)
    grid.plot(figsize=(2.6 + k * cell * max(w / h, 0.6), len(keys) * cell * 1.05))
    for r, key in enumerate(keys):  # the model's name left of its row
        grid.axes_[r, 0].set_ylabel(ROWS[key].replace(" on ", "\non ").replace(" (", "\n("),
                                    rotation=0, ha="right", va="center", fontsize=8)
    return Figure(
        grid.figure_,
        caption=(f"The first {k} of the samples each row of the table is scored on, one row "
                 "per model (grey levels clipped to [0, 1]; the VAE's are decoder means, the "
                 "Bernoulli mixture's binary images); the last row is real held-out images."),
        alt=f"A grid of {len(keys)} rows of {k} images: samples of each model and real images.",
    )


def _notes(ctx, models, feature_space, n, K) -> str:
    gmm = models["gmm"]
    acc = (f" Its accuracy on the test rows is {100 * feature_space['test_accuracy']:.1f}%."
           if "test_accuracy" in feature_space else
           " The data have no labels, so there are no class columns; note that PPCA matches "
           "the training rows' mean and covariance in exactly these coordinates, which favours "
           "it on the Fréchet distance.")
    return (
        f"Models fitted on the {len(ctx.holdout().train)} training rows. PPCA: "
        f"{models['ppca'].n_components_} components (90% of the variance). Gaussian mixture: "
        f"K={gmm.n_components} full covariances on PPCA's top {gmm.n_pcs} whitened principal "
        f"coordinates, times an isotropic Gaussian (σ² = {gmm.noise_variance_:.3g}, the mean "
        "discarded variance) on the remaining directions: a density in pixel space like "
        f"PPCA's. Bernoulli mixture: K={models['bmm'].n_components} on images binarised at "
        "0.5; its log-likelihood is a probability mass on binary images, not comparable with "
        "the densities. VAE: Bernoulli decoder on grey levels, so its bound (K="
        f"{K}) is neither a density nor a mass — compare it only with other such VAEs; its "
        "samples are decoder means. Sample-based columns: the same "
        f"{n} samples per row (the size of the reference pool), Parzen σ chosen on the "
        f"validation rows; features: {feature_space['description']}.{acc}"
    )
