"""The API's limits and wire constants (api-schemas.md; SEED wins where documents differ)."""

from __future__ import annotations

from typing import Final

API_VERSION: Final = "2014-05-26"
# STS, the RPC API temporary credentials come from (the official credentials library's).
STS_API_VERSION: Final = "2015-04-01"
STS_ACTIONS: Final = frozenset({"AssumeRole", "AssumeRoleWithOIDC"})

# --- limits -------------------------------------------------------------------------
# SEED: InstanceId.N 1..50. SDK 7.11.8 says 1..100 where the account's quota allows;
# the seed's value is the default and the larger one a setting.
RUN_COMMAND_MAX_INSTANCES: Final = 50
RUN_COMMAND_MAX_INSTANCES_QUOTA: Final = 100
CONTENT_MAX_BYTES_KEPT: Final = 18 * 1024  # Base64 size of content (+ parameters)
CONTENT_MAX_BYTES: Final = 24 * 1024
NAME_MAX: Final = 128
DESCRIPTION_MAX: Final = 512
WORKING_DIR_MAX: Final = 200
USERNAME_MAX: Final = 255
WINDOWS_PASSWORD_NAME_MAX: Final = 255
CLIENT_TOKEN_MAX: Final = 64
PARAMETER_NAMES_MAX: Final = 20  # distinct {{name}}s defined in the content
PARAMETER_VALUES_MAX: Final = 10  # key/value pairs passed in Parameters
PARAMETER_NAME_MAX_BYTES: Final = 64
TAGS_MAX: Final = 20
RESOURCE_TAGS_MAX: Final = 10  # SEED (SDK 7.11.8: 20)
TAG_KEY_MAX: Final = 64
TAG_VALUE_MAX: Final = 128
DEFAULT_TIMEOUT: Final = 60
RATE_MIN_SECONDS: Final = 60
RATE_MAX_SECONDS: Final = 7 * 24 * 3600
CRON_MIN_INTERVAL_SECONDS: Final = 10
OUTPUT_MAX_BYTES: Final = 24 * 1024
DESCRIBE_INSTANCES_MAX_RESULTS: Final = 100
DESCRIBE_INSTANCES_MAX_IDS: Final = 100
ASSISTANT_STATUS_MAX_IDS: Final = 100  # DOC 2024-12 (DOC21: 50)
ASSISTANT_STATUS_MAX_RESULTS: Final = 50
INVOCATIONS_MAX_RESULTS: Final = 50
STOP_INVOCATION_MAX_INSTANCES: Final = 50
ACCOUNT_ATTRIBUTE_NAMES_MAX: Final = 8
TIMESTAMP_MAX_SKEW_SECONDS: Final = 15 * 60
NONCE_WINDOW_SECONDS: Final = 15 * 60

COMMAND_TYPES: Final = ("RunShellScript", "RunBatScript", "RunPowerShellScript")
WINDOWS_COMMAND_TYPES: Final = ("RunBatScript", "RunPowerShellScript")
REPEAT_MODES: Final = ("Once", "Period", "NextRebootOnly", "EveryReboot", "DryRun")
CONTAINER_ID_PREFIXES: Final = ("docker://", "containerd://", "cri-o://")
BUILTIN_PARAMETERS: Final = (
    "ACS::RegionId",
    "ACS::AccountId",
    "ACS::InstanceId",
    "ACS::InstanceName",
    "ACS::InvokeId",
    "ACS::CommandId",
)
INSTANCE_STATUSES: Final = ("Pending", "Running", "Starting", "Stopping", "Stopped")
ATTRIBUTE_COMMAND_QUOTA: Final = "max-axt-command-count"
ATTRIBUTE_INVOCATION_QUOTA: Final = "max-axt-invocation-daily"
