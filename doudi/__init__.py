"""doudi (兜底): early warning of households at risk of falling (back) into poverty.

The ``doudi`` package holds what every stage shares: the data contract, settings, policy rules,
reading and validating a world, the synthetic world and the labels. Feature builders live in
``features``, models in ``models``, the service in ``serving`` and monitoring in ``monitoring``.
"""

__version__ = "0.1.0"
