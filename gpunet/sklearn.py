"""scikit-learn estimators trained by gpunet (needs the extra: pip install 'gpunet[sklearn]').

A face: the code is in gpunet.tools.sklearn.
"""

from .tools.sklearn import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
