"""LeNet-5's learned features as a scikit-learn transformer: :class:`LeNet5Features`."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from .classifier import LeNet5Classifier

__all__ = ["LeNet5Features"]


class LeNet5Features(TransformerMixin, BaseEstimator):
    """The 84 activations of LeNet-5's F6 layer, as a pipeline step.

    ``fit`` trains a clone of ``classifier`` on ``(X, y)``; ``transform`` maps
    each image to the activations of the last hidden layer (F6) of the trained
    network, the representation its output layer classifies. Another model
    then learns from these features: the classic "CNN features + SVM" is
    ``make_pipeline(LeNet5Features(), SVC())``.

    Parameters
    ----------
    classifier : LeNet5Classifier or None, default=None
        The network to train, with its settings (epochs, learning rate,
        augmentation, ``random_state``...). It is cloned, never changed. None
        uses ``LeNet5Classifier()``. Its parameters are reachable as
        ``classifier__<name>`` in ``set_params`` and searches.

    Attributes
    ----------
    classifier_ : LeNet5Classifier
        The trained network.
    n_features_in_ : int
        Number of values per input sample (``channels * height * width``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` was a DataFrame with string column names.

    See Also
    --------
    LeNet5Classifier.extract_features : The same features from a fitted
        classifier.

    Notes
    -----
    The network needs labels: this is a supervised transformer, and ``fit``
    requires ``y``. ``fit_transform`` returns the features of the very images
    the network was trained on, which it fits better than unseen ones. A
    model stacked on top therefore sees cleaner features in training than
    in prediction; with few samples, training the network on other data than
    the next step (or using cross-validated features) avoids this.

    Keyword arguments of ``fit`` (``sample_weight``, ``validation_data``) go
    to the classifier's ``fit``; with metadata routing enabled, they are
    routed as the classifier requests them (``set_fit_request``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.svm import SVC
    >>> from sklenet import LeNet5Classifier, LeNet5Features
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> features = LeNet5Features(LeNet5Classifier(max_epochs=5, random_state=0))
    >>> model = make_pipeline(features, SVC()).fit(X_train, y_train)
    >>> model.score(X_test, y_test) > 0.9
    True
    >>> features.fit(X_train, y_train).transform(X_test[:3]).shape
    (3, 84)
    >>> features.get_feature_names_out()[:2]
    array(['lenet5_f6_0', 'lenet5_f6_1'], dtype=object)
    """

    _parameter_constraints = {
        "classifier": [HasMethods(["fit", "extract_features"]), None],
    }

    def __init__(self, classifier=None):
        self.classifier = classifier

    def _classifier(self):
        return LeNet5Classifier() if self.classifier is None else self.classifier

    # The classifier validates its own parameters and data when it is fitted.
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Training images.
        y : array-like of shape (n_samples,)
            Labels.
        **fit_params : dict
            Passed to the classifier's ``fit`` (``sample_weight``,
            ``validation_data``); routed by the classifier's requests when
            metadata routing is enabled.

        Returns
        -------
        self : LeNet5Features
            The fitted transformer.
        """
        if _routing_enabled():
            fit_params = process_routing(self, "fit", **fit_params).classifier.fit
        classifier = clone(self._classifier()).fit(X, y, **fit_params)
        fitted = dict(vars(self))
        # A refit on an array must not keep the names of an earlier DataFrame.
        fitted.pop("feature_names_in_", None)
        if hasattr(classifier, "feature_names_in_"):
            fitted["feature_names_in_"] = classifier.feature_names_in_
        fitted.update(
            classifier_=classifier,
            n_features_in_=classifier.n_features_in_,
            _n_features_out=classifier.net_.module_.lenet5.f6.out_features,
        )
        # One assignment, so that an exception or Ctrl-C anywhere in fit leaves
        # the transformer as it was, and a transform in another thread sees the
        # old fitted attributes or the new ones, never a mix.
        self.__dict__ = fitted
        return self

    def transform(self, X):
        """The F6 activations of each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Images, in the form the network was trained on.

        Returns
        -------
        features : ndarray of shape (n_samples, 84)
            F6 activations, float64.
        """
        check_is_fitted(self)
        return self.classifier_.extract_features(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``lenet5_f6_0`` ... ``lenet5_f6_83``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the input features seen in ``fit``: the
            output features do not correspond to input columns.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per F6 unit.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        return np.asarray(
            [f"lenet5_f6_{i}" for i in range(self._n_features_out)], dtype=object
        )

    def get_metadata_routing(self):
        """Metadata routing of this object: ``fit`` routes to the classifier's ``fit``.

        Returns
        -------
        routing : MetadataRouter
            A :class:`~sklearn.utils.metadata_routing.MetadataRouter`.
        """
        return MetadataRouter(owner=type(self).__name__).add(
            classifier=self._classifier(),
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        classifier_tags = self._classifier().__sklearn_tags__()
        tags.input_tags = classifier_tags.input_tags
        tags.target_tags.required = True
        return tags
