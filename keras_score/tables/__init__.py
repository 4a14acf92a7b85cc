"""Typed tables: a schema, a reversible transform, and `TableModel`, a score model of table rows."""

from keras_score.tables.schema import COLUMN_TYPES, ColumnSchema, TableSchema
from keras_score.tables.model import TableModel
from keras_score.tables.privacy import closest_record_distances, closest_record_report
from keras_score.tables.transform import TableTransform

__all__ = ["COLUMN_TYPES", "ColumnSchema", "TableModel", "TableSchema", "TableTransform", "closest_record_distances", "closest_record_report"]
