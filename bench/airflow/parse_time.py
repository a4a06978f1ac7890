"""Times how long Airflow takes to parse one DAG file, beyond Airflow's own import.

    python parse_time.py DAG_FILE      # prints: <import seconds> <parse seconds> <tasks>
"""
import sys
import time

start = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (Airflow's own import, timed apart)

imported = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parsed = time.perf_counter()
if bag.import_errors:
    sys.exit(f"import errors: {bag.import_errors}")
tasks = sum(len(dag.tasks) for dag in bag.dags.values())
print(f"{imported - start:.3f} {parsed - imported:.3f} {tasks}")
