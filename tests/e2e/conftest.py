from tests.integration.conftest import postgres_url, rabbit_url, s3_endpoint  # noqa: F401
