"""scikit-learn's estimator checks for the three EM models."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from latentspace.cluster import KMeans
from latentspace.mixture import BernoulliMixture, GaussianMixture

_EXPECTED = {
    "KMeans": {
        "check_sample_weight_equivalence_on_dense_data": (
            "k-means++ seeding draws rows by index, so a row repeated r times and the same "
            "row with weight r consume the random stream differently and can reach another "
            "local optimum; from fixed initial centres, integer weights and repetition give "
            "identical fits (tests/cluster/test_kmeans.py::"
            "test_sample_weight_integer_equals_repetition)."
        ),
        "check_sample_weight_equivalence_on_sparse_data": (
            "the same seeding on sparse rows: a repeated row and a weighted row consume the "
            "random stream differently; from fixed initial centres sparse weighted fits equal "
            "the dense ones (tests/cluster/test_kmeans_sparse_elkan.py)."
        ),
    },
    "GaussianMixture": {
        "check_sample_weight_equivalence_on_dense_data": (
            "the default init_params='kmeans' runs k-means++ seeding, which draws rows by "
            "index, so a repeated row and a weighted row consume the random stream "
            "differently; from the same initial parameters, integer weights and repetition "
            "give the same fit to 1e-10 (tests/mixture/test_weights.py::"
            "test_integer_weights_equal_repetition)."
        ),
    },
}


def _expected_failures(estimator):
    return _EXPECTED.get(type(estimator).__name__, {})


# BernoulliMixture models binary data; the checks feed arbitrary real values, so it is checked
# with a binarising threshold (its [0, 1] contract is tested in test_em_reliability.py).
@parametrize_with_checks(
    [
        KMeans(3, n_init=2),
        GaussianMixture(2),
        GaussianMixture(2, covariance_type="diag", hard=True),
        BernoulliMixture(2, binarize=0.0),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
