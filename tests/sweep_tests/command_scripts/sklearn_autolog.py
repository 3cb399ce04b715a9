"""scikit-learn with mlflow.autolog(), the Azure ML docs' way: no log_metric call at all."""

import argparse

import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float)
args = parser.parse_args()
mlflow.autolog(log_models=False, log_datasets=False)
X, y = load_iris(return_X_y=True)
LogisticRegression(C=args.C, max_iter=200).fit(X, y)
