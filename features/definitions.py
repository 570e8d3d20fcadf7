"""Feast objects of the NBA engine: the customer entity, the profile view and services.

The profile schema comes from ``nba.profiles.FEATURES`` so that the SQL that computes
profiles, the docs and this view never disagree. The offline source is the Parquet file the
engine writes under ``NBA_HOME`` (``nba features build``).
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from nba.config import get_settings
from nba.profiles import ENTITY_KEY, FEATURE_SERVICE, FEATURE_VIEW, FEATURES, TIMESTAMP_FIELD

_TYPES = {"int": Int64, "float": Float64, "string": String}

customer = Entity(
    name="customer",
    join_keys=[ENTITY_KEY],
    value_type=ValueType.STRING,
    description="A customer of the data contract's customers table.",
)

profile_source = FileSource(
    name="customer_profile_source",
    path=str(get_settings().profiles_path),
    timestamp_field=TIMESTAMP_FIELD,
    description="Point-in-time profiles, one row per (customer, as-of time).",
)

customer_profile = FeatureView(
    name=FEATURE_VIEW,
    entities=[customer],
    # Profiles are written for the exact as-of times needed; no expiry (0 = live forever).
    ttl=timedelta(0),
    schema=[
        Field(name=f.name, dtype=_TYPES[f.dtype], description=f.description) for f in FEATURES
    ],
    source=profile_source,
    online=True,
    description="Customer profile computed from interactions, contracts and decisions.",
)

# One feature service per model version: the input contract of the response models.
nba_v1 = FeatureService(
    name=FEATURE_SERVICE,
    features=[customer_profile],
    description="Input of the nba-policy model, version 1.",
)
