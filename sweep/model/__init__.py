"""The model's way out of a sweep: ``best/`` (the best trial's model, its checked ONNX file
and card), the registry of numbered model versions, predictions with a registered model,
and where reports may be written.
"""
