"""The one adapter that talks to the Kubernetes API."""
