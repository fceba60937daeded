"""The services' S3 policies as documents: their patterns are the key layout's, and they
grant object actions on prefixes, never the bucket itself (the policy engine's verdicts
are tests/integration/test_store_accounts.py)."""

from __future__ import annotations

import json
import subprocess
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


def run_script(
    tmp_path: Path, root_password: str, attach_fails: bool, holds: bool
) -> tuple[int, list[str]]:
    """apply-minio.sh under ``sh`` with a stand-in for MinIO's ``mc`` (no MinIO server
    here): it logs each call, and ``admin policy attach`` fails as a second attach does;
    ``admin user info --json`` then shows the policy or not. What is checked is the
    script's own logic; the policies themselves are enforced in test_store_accounts."""
    out = tmp_path / "policies"
    sp.main(["--out", str(out)])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "mc.log"
    (bin_dir / "mc").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in\n'
        f'  "admin policy attach"*) exit {1 if attach_fails else 0};;\n'
        '  "--json admin user info"*) '
        + (
            'echo "{\\"accessKey\\":\\"$6\\",\\"policyName\\":\\"$6\\"}";;\n'
            if holds
            else 'echo "{\\"accessKey\\":\\"$6\\"}";;\n'
        )
        + "esac\n"
    )
    (bin_dir / "mc").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "MINIO_URL": "http://minio:9000",
        "MINIO_ROOT_USER": "root",
        "MINIO_ROOT_PASSWORD": root_password,
        "BDISC_BUCKET": "bdisc",
        **{f"S3_SECRET_{s.upper()}": f"secret-of-{s}" for s in sp.SERVICES},
    }
    done = subprocess.run(["sh", str(out / "apply-minio.sh")], env=env, capture_output=True)
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, calls


def test_the_minio_script_makes_each_account_and_runs_again_without_harm(tmp_path: Path) -> None:
    code, calls = run_script(tmp_path / "first", "a-real-secret", attach_fails=False, holds=True)
    assert code == 0
    assert calls[:2] == [
        "alias set local http://minio:9000 root a-real-secret",
        "mb --ignore-existing local/bdisc",
    ]
    for service in sp.SERVICES:
        user = f"bdisc-{service}"
        assert f"admin user add local {user} secret-of-{service}" in calls
        assert f"admin policy attach local {user} --user {user}" in calls
    # run again: each attach fails as already in effect, and the user holds its policy
    code, _ = run_script(tmp_path / "again", "a-real-secret", attach_fails=True, holds=True)
    assert code == 0
    # an attach that fails while the user holds no policy fails the script
    code, _ = run_script(tmp_path / "broken", "a-real-secret", attach_fails=True, holds=False)
    assert code != 0
    # the example's placeholder is refused before anything is made
    code, calls = run_script(tmp_path / "example", "change-me-minio-secret", False, True)
    assert code != 0 and calls == []
