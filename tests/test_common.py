"""scikit-learn's own estimator checks, run in full on LeNet5Classifier."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklenet import LeNet5Classifier


def expected_failed_checks(estimator):
    # Every check applies and passes; keep this empty.
    return {}


@parametrize_with_checks(
    [
        LeNet5Classifier(),
        # The study's configuration, with a short run and no validation split.
        LeNet5Classifier(pooling="avg", max_epochs=5, validation_fraction=None),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
