"""schemathesis against each service's /openapi.json, through the gateway of a running stack.

Every generated request must get a documented status (never a 5xx), a documented content type,
and a body matching the documented schema: a problem document whenever it is an error.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from tests.support.stack import Stack

EXAMPLES_PER_OPERATION = 25  # bounded for `make test`; raise locally for a deeper run
# Our validation is deliberately stricter than a JSON schema can say (email-validator refuses
# reserved domains such as `.test`; logins are throttled), so schema-valid input may be refused:
# still with a documented 400/429 problem, which the remaining checks verify.
EXCLUDED_CHECKS = [positive_data_acceptance]
# Schema-violating input may also be refused for its size before any schema is read: a URI or
# headers over the gateway's limits get 414 or 431 problem documents (documented on every operation).
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "414",
                    "415",
                    "422",
                    "428",
                    "429",
                    "431",
                    "5xx",
                ]
            }
        }
    }
)


def _operations(stack: Stack, service: str):
    schema = schemathesis.openapi.from_url(f"{stack.service_url(service)}/openapi.json", config=CONFIG)
    return [result.ok() for result in schema.get_all_operations()]


def _has_input(operation) -> bool:
    """Whether a request can violate the schema; a free-form string path parameter cannot."""
    if operation.get_request_payload_content_types():
        return True
    return any(parameter.location != "path" for parameter in operation.iter_parameters())


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
@pytest.mark.parametrize("service", ["auth", "profile", "board"])
def test_every_documented_operation_survives_generated_input(
    fuzz_stack: Stack, access_token: str, service: str, mode: schemathesis.GenerationMode
):
    """Schema-valid input (positive) and schema-violating input (negative), for every operation."""
    operations = _operations(fuzz_stack, service)
    assert operations
    for operation in operations:
        if mode is schemathesis.GenerationMode.NEGATIVE and not _has_input(operation):
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:
            # Requests go through the gateway, with a real token so protected routes are reached.
            case.call_and_validate(
                base_url=fuzz_stack.url,
                headers={"Authorization": f"Bearer {access_token}"},
                excluded_checks=EXCLUDED_CHECKS,
            )

        fuzz()
