from tests.integration.conftest import hub  # noqa: F401  (the real hub process fixture)
