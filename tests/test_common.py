"""scikit-learn's own estimator checks, run in full on LeNet5Classifier."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklenet import LeNet5Classifier, LeNet5Features


def expected_failed_checks(estimator):
    # The one check no minibatch-SGD estimator can meet; sklearn lists it for
    # MLPClassifier and SGDClassifier too. Every other check passes.
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "Mini-batch SGD: a weight of 2 and a duplicated sample give the same loss on a "
            "given batch (tested in test_weights.py), but the batches and steps differ."
        ),
    }


@parametrize_with_checks(
    [
        LeNet5Classifier(),
        # The study's configuration (the `study` recipe), with a short run and no
        # validation split (10 epochs: check_class_weight_classifiers needs a few
        # steps on 50 samples).
        LeNet5Classifier(activation="tanh", pooling="avg", batch_size=128, lr=1e-3,
                         lr_schedule="cosine", label_smoothing=0.0, precision="float32",
                         max_epochs=10, validation_fraction=None),
        # The transformer, seeded through its classifier (set_random_state only sets
        # a top-level random_state); two epochs: the checks need behaviour, not accuracy.
        LeNet5Features(LeNet5Classifier(max_epochs=2, validation_fraction=None, random_state=0)),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
