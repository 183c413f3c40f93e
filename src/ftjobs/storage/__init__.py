"""The one adapter that talks to object storage (s3:// through boto3, and file://)."""
