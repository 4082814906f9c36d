"""Take a model through its whole life in the MLflow Model Registry."""
