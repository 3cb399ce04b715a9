import mlflow

mlflow.log_metric("accuracy", 0.9)
mlflow.log_metric("loss", 0.1)
