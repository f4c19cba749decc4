"""Pipelines: ``pipeline.yaml`` models and validation, signal schemas, stage configs, profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.pipelines.model import Pipeline, Stage, InputSignal, OutputSignal, load_pipeline, parse_pipeline, pipeline_path
    from goldfish.pipelines.validate import ValidationReport, validate_pipeline
    from goldfish.pipelines.config_check import ConfigCheckResult, validate_config

__all__ = [
    "ConfigCheckResult",
    "InputSignal",
    "OutputSignal",
    "Pipeline",
    "Stage",
    "ValidationReport",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_path",
    "validate_config",
    "validate_pipeline",
]

__getattr__ = lazy_face(__name__, {
    "Pipeline": "model",
    "Stage": "model",
    "InputSignal": "model",
    "OutputSignal": "model",
    "load_pipeline": "model",
    "parse_pipeline": "model",
    "pipeline_path": "model",
    "ValidationReport": "validate",
    "validate_pipeline": "validate",
    "ConfigCheckResult": "config_check",
    "validate_config": "config_check",
})
