"""Clustering: K-means as hard EM (Lloyd, k-means++, mini-batch updates)."""

from ._kmeans import KMeans, kmeans_plusplus
from ._seeding import weighted_rows

__all__ = ["KMeans", "kmeans_plusplus", "weighted_rows"]
