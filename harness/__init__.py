"""harness: grade deep-learning course submissions by retraining every model fairly.

Pipeline, one module per stage, each writing a typed JSON artifact the next one reads::

    ingest  ->  train  ->  evaluate  ->  score  ->  report
"""

__version__ = "0.1.0"
