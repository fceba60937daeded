"""The services' S3 policies as documents: their patterns are the key layout's, and they
grant object actions on prefixes, never the bucket itself (the policy engine's verdicts
are tests/integration/test_store_accounts.py)."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from bdisc.app import keys
from bdisc.service import store_policies as sp

SAMPLES = {
    sp.AUDIO: keys.audio_prefix("p") + "site/deep/r.flac",
    sp.FILES: keys.files_prefix("p") + "truth.csv",
    sp.EMBEDDINGS: keys.embedding_key("k", "h", "site/r.flac"),
    sp.RESULTS: keys.results_prefix("p", "j", "site") + "montages/c1.png",
    sp.TRAINSET: keys.trainset_prefix("p", "j") + "call/clip.wav",
    sp.MODELS: keys.models_prefix("p", "m") + "model.json",
    sp.CANCELLED: keys.cancel_mark("p", "j"),
    keys.READY_KEY: keys.READY_KEY,
}


def test_each_pattern_matches_its_kind_of_key_and_no_other() -> None:
    for pattern, key in SAMPLES.items():
        matching = [p for p in SAMPLES if fnmatchcase(key, p)]
        assert matching == [pattern], (key, matching)
    for grants in sp.ACCESS.values():
        assert set(grants) <= set(SAMPLES)


def test_policies_grant_objects_by_prefix_and_never_the_bucket() -> None:
    for service in sp.SERVICES:
        document = sp.policy(service, ["bdisc"])
        actions = {a for st in document["Statement"] for a in st["Action"]}
        assert actions <= {
            "s3:GetObject",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:DeleteObject",
            "s3:ListBucket",
            "s3:GetBucketLocation",
        }, service
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow" and "*" not in statement["Action"]
            if statement["Action"] == ["s3:ListBucket"]:  # listing only where it may read
                readable = [p for p, r in sp.ACCESS[service].items() if sp.READ in r]
                assert statement["Condition"] == {"StringLike": {"s3:prefix": readable}}
            elif statement["Action"] != ["s3:GetBucketLocation"]:
                assert all(r.startswith("arn:aws:s3:::bdisc/") for r in statement["Resource"])
    assert sp.allowed("spectrogram", SAMPLES[sp.AUDIO]) == {sp.READ}
    assert sp.allowed("embedding", SAMPLES[sp.RESULTS]) == set()
    assert sp.allowed("gateway", SAMPLES[sp.EMBEDDINGS]) == set()


def test_the_command_writes_every_policy_and_the_minio_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sp.main(["--bucket", "field-data", "--out", str(tmp_path)]) == 0
    for service in sp.SERVICES:
        written = json.loads((tmp_path / f"{service}.json").read_text())
        assert written == sp.policy(service, ["field-data"])
    script = (tmp_path / "apply-minio.sh").read_text()
    assert script.startswith("#!/bin/sh") and "set -eu" in script
    assert sp.main(["--service", "spectrogram"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == sp.policy("spectrogram", ["bdisc"])
    with pytest.raises(SystemExit):
        sp.main([])
