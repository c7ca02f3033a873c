"""Qt item models of the app: data for views, with custom roles, testable without widgets."""

from chroma_studio.gui.models.dataset_filter import DatasetFilterModel
from chroma_studio.gui.models.dataset_items import PROBLEM_KINDS, DatasetItem, DatasetStats, ProblemKind
from chroma_studio.gui.models.dataset_model import DatasetModel, DatasetRole

__all__ = [
    "PROBLEM_KINDS",
    "DatasetFilterModel",
    "DatasetItem",
    "DatasetModel",
    "DatasetRole",
    "DatasetStats",
    "ProblemKind",
]
