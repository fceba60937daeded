"""``python -m bdisc.service.store_policies``: an S3 account per service with least
privilege, scoped by key prefix (the layout of ``bdisc.app.keys``).

Each service gets a policy in AWS's IAM language, which MinIO (``mc admin policy
create``), AWS itself and SeaweedFS (the tests' S3 server, which enforces it) all read:

- read: ``s3:GetObject`` on the prefix, and ``s3:ListBucket`` of names under it (S3
  answers a missing key with 403 rather than 404 to an account that may not list it);
- write: ``s3:PutObject`` (multipart uploads too) and ``s3:AbortMultipartUpload``;
- delete: ``s3:DeleteObject``.

No service may create or delete the bucket, read another service's inputs it does not
need, or list the bucket outside its prefixes: the embedding workers cannot touch a
job's results, the spectrogram service can only read recordings, the gateway cannot
read embeddings. ``--out DIR`` writes one ``<service>.json`` per service and
``apply-minio.sh``, which creates the bucket, the policies and the users
``<prefix><service>`` on MinIO with ``mc`` (secrets from ``S3_SECRET_<SERVICE>``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bdisc.app.keys import READY_KEY
from bdisc.app.senders import GATEWAY, ORCHESTRATOR
from bdisc.service.settings import PLACEHOLDER

SPECTROGRAM = "spectrogram"

# Key patterns (``*`` spans any characters, ``/`` included), one per kind of object.
AUDIO = "projects/*/audio/*"  # keys.audio_prefix
FILES = "projects/*/files/*"  # keys.files_prefix
EMBEDDINGS = "embeddings/*"  # keys.embedding_key
RESULTS = "projects/*/jobs/*/results/*"  # keys.job_results_prefix (every job's kind)
TRAINSET = "projects/*/jobs/*/trainset/*"  # keys.trainset_prefix
MODELS = "projects/*/models/*"  # keys.models_prefix
CANCELLED = "projects/*/jobs/*/cancelled"  # keys.cancel_mark

READ, WRITE, DELETE = "read", "write", "delete"

# What each service does to which keys (read from the code paths of each service; every
# stage worker reads the cancel marks of the jobs it works for).
ACCESS: dict[str, dict[str, tuple[str, ...]]] = {
    GATEWAY: {
        # uploads (direct and presigned), listing, the recordings a probe refuses
        AUDIO: (READ, WRITE, DELETE),
        FILES: (WRITE,),
        # results of every job kind behind presigned links; review sheets it rewrites
        RESULTS: (READ, WRITE),
        TRAINSET: (READ,),
        MODELS: (READ,),
        READY_KEY: (READ,),  # /readyz asks for it (absent: the store answers)
    },
    ORCHESTRATOR: {CANCELLED: (WRITE,), RESULTS: (READ, WRITE)},
    "ingestion": {AUDIO: (READ,), RESULTS: (WRITE,), CANCELLED: (READ,)},
    "embedding": {AUDIO: (READ,), EMBEDDINGS: (READ, WRITE), CANCELLED: (READ,)},
    "clustering": {
        AUDIO: (READ,),
        EMBEDDINGS: (READ,),
        RESULTS: (READ, WRITE, DELETE),
        CANCELLED: (READ,),
    },
    "export": {
        AUDIO: (READ,),
        RESULTS: (READ,),
        TRAINSET: (READ, WRITE, DELETE),
        CANCELLED: (READ,),
    },
    "evaluation": {FILES: (READ,), RESULTS: (READ, WRITE, DELETE), CANCELLED: (READ,)},
    "training": {
        AUDIO: (READ,),  # search examples, suggestions' clips
        FILES: (READ,),
        EMBEDDINGS: (READ,),
        RESULTS: (READ, WRITE, DELETE),  # its own results, and search indexes in discovery's
        MODELS: (READ, WRITE, DELETE),
        CANCELLED: (READ,),
    },
    SPECTROGRAM: {AUDIO: (READ,)},
}
SERVICES = tuple(ACCESS)

OBJECT_ACTIONS = {
    READ: ("s3:GetObject",),
    WRITE: ("s3:PutObject", "s3:AbortMultipartUpload"),
    DELETE: ("s3:DeleteObject",),
}


def allowed(service: str, key: str) -> set[str]:
    """What ``service`` may do to ``key`` (its patterns matched as S3 matches them)."""
    from fnmatch import fnmatchcase

    return {
        right
        for pattern, rights in ACCESS[service].items()
        if fnmatchcase(key, pattern)
        for right in rights
    }


def policy(service: str, buckets: Sequence[str]) -> dict[str, Any]:
    """The IAM policy of ``service`` over ``buckets`` (names or patterns: ``e2e-*``)."""
    grants = ACCESS[service]
    statements: list[dict[str, Any]] = []
    for right, actions in OBJECT_ACTIONS.items():
        patterns = [p for p, rights in grants.items() if right in rights]
        if patterns:
            statements.append(
                {
                    "Sid": right.capitalize(),
                    "Effect": "Allow",
                    "Action": list(actions),
                    "Resource": [f"arn:aws:s3:::{b}/{p}" for b in buckets for p in patterns],
                }
            )
    listed = [p for p, rights in grants.items() if READ in rights]
    bucket_arns = [f"arn:aws:s3:::{b}" for b in buckets]
    statements += [
        {
            "Sid": "ListReadable",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": bucket_arns,
            "Condition": {"StringLike": {"s3:prefix": listed}},
        },
        # the S3 client asks once for the bucket's region (it signs for that region)
        {
            "Sid": "Region",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation"],
            "Resource": bucket_arns,
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def seaweedfs_config(
    buckets: Sequence[str],
    accounts: Mapping[str, tuple[str, str]],
    admin: tuple[str, str],
    prefix: str = "bdisc-",
) -> dict[str, Any]:
    """SeaweedFS's ``-s3.config``: ``admin`` (access key, secret) may do everything, each
    service of ``accounts`` (service -> access key, secret) holds its policy."""
    identities: list[dict[str, Any]] = [
        {
            "name": "admin",
            "credentials": [{"accessKey": admin[0], "secretKey": admin[1]}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
    for service, (access, secret) in accounts.items():
        identities.append(
            {
                "name": f"{prefix}{service}",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "policyNames": [f"{prefix}{service}"],
            }
        )
    policies = [
        {"name": f"{prefix}{service}", "content": json.dumps(policy(service, buckets))}
        for service in accounts
    ]
    return {"identities": identities, "policies": policies}


def minio_script(prefix: str = "bdisc-") -> str:
    """A POSIX shell script for the ``minio/mc`` image, run from the folder of the policy
    files: the bucket, then each service's policy and user, again and again without
    harm. Needs MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, BDISC_BUCKET and
    S3_SECRET_<SERVICE> for every service."""
    lines = [
        "#!/bin/sh",
        "# Written by python -m bdisc.service.store_policies: do not edit.",
        "set -eu",
        "refuse_placeholder() {  # name, value",
        f'  case "$2" in *{PLACEHOLDER}*) echo "$1 is still the example\'s placeholder: set a '
        'secret" >&2; exit 1;; esac',
        "}",
        'refuse_placeholder MINIO_ROOT_PASSWORD "$MINIO_ROOT_PASSWORD"',
        'mc alias set local "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"',
        'mc mb --ignore-existing "local/$BDISC_BUCKET"',
        "account() {  # service, its secret",
        f'  user="{prefix}$1"',
        '  refuse_placeholder "the secret of $user" "$2"',
        '  mc admin policy create local "$user" "$(dirname "$0")/$1.json"',
        '  mc admin user add local "$user" "$2"',
        "  # a second attach fails (already in effect): then the user must hold the policy",
        '  mc admin policy attach local "$user" --user "$user" \\',
        '    || mc --json admin user info local "$user" | grep -q \'"policyName":"[^"]*\'"$user"',
        "}",
    ]
    lines += [f'account {s} "$S3_SECRET_{s.upper()}"' for s in SERVICES]
    return "\n".join(lines) + "\n"


def write(out: Path, buckets: Sequence[str], prefix: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for service in SERVICES:
        path = out / f"{service}.json"
        path.write_text(json.dumps(policy(service, buckets), indent=1) + "\n", encoding="utf-8")
        written.append(path)
    script = out / "apply-minio.sh"
    script.write_text(minio_script(prefix), encoding="utf-8")
    written.append(script)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bdisc.service.store_policies", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--bucket", action="append", help="the services' bucket (repeatable)")
    parser.add_argument("--prefix", default="bdisc-", help="the users are <prefix><service>")
    parser.add_argument("--out", type=Path, help="a folder: <service>.json, apply-minio.sh")
    parser.add_argument("--service", choices=SERVICES, help="print this service's policy")
    args = parser.parse_args(argv)
    buckets = args.bucket or ["bdisc"]
    if args.out is None and args.service is None:
        parser.error("give --out DIR or --service NAME")
    if args.service:
        sys.stdout.write(json.dumps(policy(args.service, buckets), indent=1) + "\n")
    if args.out is not None:
        write(args.out, buckets, args.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
