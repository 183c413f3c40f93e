"""The operator: a kopf shell around the pure reconcile function."""
