"""Which storage failures a new attempt can fix: the one classification table.

`STORAGE_FAILURES` is the table (docs/failure-handling.md renders it, through
hack/generate.py); `classify_client_error` and `storage_failure` apply it to what boto3,
botocore, s3fs and aiohttp raise. Transient trouble (the network, 5xx answers,
throttling) is retriable: botocore already retried it with backoff, and a new attempt
resumes from the last checkpoint. Wrong buckets, keys and permissions are permanent:
retrying cannot fix them, so the message names the bucket, URI and endpoint to check,
never a credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE


@dataclass(frozen=True)
class FailureClass:
    """One row of the table: the S3 error codes or exception kinds it covers, the exit
    code, and the advice the message carries."""

    name: str
    matches: tuple[str, ...]
    retriable: bool
    cause: str
    advice: str

    @property
    def exit_code(self) -> int:
        return EXIT_RETRIABLE if self.retriable else EXIT_PERMANENT


NETWORK = FailureClass(
    "network",
    (
        "connection refused / reset / closed",
        "connect or read timeout",
        "incomplete body",
        "endpoint unreachable",
    ),
    True,
    "the network or the server went away mid-request (after botocore's retries)",
    "transient: the next attempt resumes from the last verified checkpoint",
)
SERVER_ERROR = FailureClass(
    "server-error",
    ("InternalError", "ServiceUnavailable", "BadGateway", "GatewayTimeout", "HTTP 5xx"),
    True,
    "the S3 server failed the request",
    "transient: retried with backoff, then by a new attempt",
)
THROTTLED = FailureClass(
    "throttled",
    (
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "RequestTimeout",
    ),
    True,
    "the S3 server asked the client to slow down",
    "transient: retried with backoff, then by a new attempt",
)
NO_SUCH_BUCKET = FailureClass(
    "no-such-bucket",
    ("NoSuchBucket",),
    False,
    "the bucket does not exist at this endpoint",
    "check the bucket name in the URI and spec.storage.endpoint",
)
ACCESS_DENIED = FailureClass(
    "access-denied",
    ("AccessDenied", "AllAccessDisabled", "AccountProblem"),
    False,
    "the credentials may not do this on this bucket",
    "grant the credentials access to the bucket/prefix named in the message",
)
UNKNOWN_KEY = FailureClass(
    "unknown-access-key",
    ("InvalidAccessKeyId", "XAdminUserNotFound", "InvalidToken", "ExpiredToken"),
    False,
    "the server does not know the access key id (or the session token expired)",
    "check the credentials Secret (spec.storage.credentialsSecret) and the endpoint",
)
BAD_SIGNATURE = FailureClass(
    "bad-signature",
    ("SignatureDoesNotMatch",),
    False,
    "the secret access key does not match the access key id",
    "check the secret access key in the credentials Secret",
)
NO_CREDENTIALS = FailureClass(
    "no-credentials",
    ("NoCredentialsError", "PartialCredentialsError"),
    False,
    "no AWS credentials in the environment",
    "set spec.storage.credentialsSecret or give the pod an identity",
)
NO_SUCH_OBJECT = FailureClass(
    "no-such-object",
    ("NoSuchKey", "NotFound", "HTTP 404"),
    False,
    "an object the job needs is not there (e.g. missing model files)",
    "check the URI named in the message",
)
UNKNOWN_REQUEST_ERROR = FailureClass(
    "request-refused",
    ("any other HTTP 4xx code",),
    False,
    "the server refused the request",
    "the S3 code in the message says why",
)

STORAGE_FAILURES: tuple[FailureClass, ...] = (
    NETWORK,
    SERVER_ERROR,
    THROTTLED,
    NO_SUCH_BUCKET,
    ACCESS_DENIED,
    UNKNOWN_KEY,
    BAD_SIGNATURE,
    NO_CREDENTIALS,
    NO_SUCH_OBJECT,
    UNKNOWN_REQUEST_ERROR,
)

_CODE_IN_TEXT = re.compile(r"An error occurred \((\w+)\)")
_BY_CODE = {code: row for row in STORAGE_FAILURES for code in row.matches}


def class_of_code(code: str, status: int | None) -> FailureClass:
    """The row for an S3 error code (the HTTP status decides for codes the table lacks)."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if code == "404" or status == 404:
        return NO_SUCH_OBJECT
    if code.isdigit() and status is None:
        status = int(code)
    if status is not None and status >= 500:
        return SERVER_ERROR
    if status == 429:
        return THROTTLED
    return UNKNOWN_REQUEST_ERROR


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_http_library_error(error: BaseException) -> bool:
    # aiohttp (under s3fs) and urllib3 (under botocore) raise their own connection errors.
    return type(error).__module__.split(".")[0] in ("aiohttp", "urllib3")


def exception_class(error: BaseException) -> tuple[FailureClass, str] | None:
    """(row, S3 code) for an exception from boto3/botocore/s3fs/aiohttp or the socket
    layer, looking through its causes; None when it is no storage failure."""
    import botocore.exceptions

    found: tuple[FailureClass, str] | None = None
    for e in _chain(error):
        if isinstance(e, botocore.exceptions.ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return class_of_code(code, int(status) if status else None), code
        if isinstance(
            e, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)
        ):
            return NO_CREDENTIALS, ""
        if found is not None:
            continue
        # boto3's S3UploadFailedError / S3TransferFailedError carry the code as text only.
        if (match := _CODE_IN_TEXT.search(str(e))) is not None:
            found = (class_of_code(match.group(1), None), match.group(1))
        elif isinstance(e, botocore.exceptions.BotoCoreError):
            found = (NETWORK, "")
        elif isinstance(e, PermissionError):
            found = (ACCESS_DENIED, "")
        elif isinstance(e, (ConnectionError, TimeoutError)) or _is_http_library_error(e):
            found = (NETWORK, "")
    return found


def storage_failure(error: BaseException, uri: str, endpoint: str | None) -> Exception | None:
    """The StorageError for an exception raised while reading s3:// `uri` through another
    library (s3fs under `datasets`), or None when it is no storage failure (bad data).
    (storage.backends.failure_from does this for any scheme.)"""
    from ftjobs.storage.backends import describe_failure

    found = exception_class(error)
    if found is None:
        return None
    return describe_failure(found, error, uri, f"endpoint {endpoint or 'AWS S3'}")


def failure_table(rows: tuple[FailureClass, ...]) -> str:
    """The Markdown table of `rows` for docs/failure-handling.md (hack/generate.py)."""
    lines = [
        "| class | S3 codes / exceptions | exit code | retried | cause | the message says |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        matches = ", ".join(f"`{m}`" if " " not in m else m for m in row.matches)
        retried = "yes, with backoff" if row.retriable else "no (`Failed`)"
        cells = [f"`{row.name}`", matches, str(row.exit_code), retried, row.cause, row.advice]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
