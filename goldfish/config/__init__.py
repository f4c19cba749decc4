"""goldfish.yaml: the models, the loader, the `goldfish init` template and the reference docs.

``load_config``/``parse_config`` return a frozen ``GoldfishConfig`` or raise one ``ConfigError``
listing every problem (file, key path, line, fix) in ``details["errors"]``.
"""

from __future__ import annotations

from goldfish.config.cloud import (
    BaseImagesConfig,
    CloudBuildConfig,
    DockerConfig,
    GceConfig,
    GcsConfig,
    WarmPoolConfig,
)
from goldfish.config.loader import CONFIG_FILENAME, load_config, parse_config
from goldfish.config.model import GoldfishConfig
from goldfish.config.reference import config_reference_markdown
from goldfish.config.sections import (
    AuditConfig,
    DefaultsConfig,
    JobsConfig,
    LocalConfig,
    MetricsConfig,
    PreRunReviewConfig,
    StateMdConfig,
    StorageConfig,
    StorageLocalConfig,
    WandbConfig,
    WorkspaceConfig,
)
from goldfish.config.svs import SvsConfig
from goldfish.config.template import default_config_yaml

__all__ = [
    "CONFIG_FILENAME",
    "AuditConfig",
    "BaseImagesConfig",
    "CloudBuildConfig",
    "DefaultsConfig",
    "DockerConfig",
    "GceConfig",
    "GcsConfig",
    "GoldfishConfig",
    "JobsConfig",
    "LocalConfig",
    "MetricsConfig",
    "PreRunReviewConfig",
    "StateMdConfig",
    "StorageConfig",
    "StorageLocalConfig",
    "SvsConfig",
    "WandbConfig",
    "WarmPoolConfig",
    "WorkspaceConfig",
    "config_reference_markdown",
    "default_config_yaml",
    "load_config",
    "parse_config",
]
