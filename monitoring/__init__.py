"""Monitoring of the relapse-risk model: drift, matured performance and fairness (issue 6).

Never imported on the request path: the API lists stored report rows only (``serving.monitoring_routes``).
Evidently is imported inside the drift functions, never at import time.
"""

from monitoring.config import MonitoringConfig, load_config

__all__ = ["MonitoringConfig", "load_config"]
