"""DeepRacer configuration files (model_metadata.json, …), parsed and validated with pydantic."""

from drlocal.config.model_metadata import ModelMetadata, load_model_metadata

__all__ = ["ModelMetadata", "load_model_metadata"]
