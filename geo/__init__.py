"""Geospatial core of traffic-hub: CRS handling, geometry validation, MEL communes, road network.

Knows nothing of Kafka, FastAPI or partner formats. Nothing heavy happens at import time: data is
loaded by explicit calls such as ``geo.communes.Communes.load()``.
"""
