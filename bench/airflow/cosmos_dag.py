"""A Cosmos DbtDag over the synthetic project, for bench/airflow_parse.sh.

Environment: BENCH_PROJECT (the dbt project), BENCH_DBT (dbt executable), BENCH_LOAD_MODE
(dbt_ls or dbt_manifest), BENCH_MANIFEST (manifest.json for dbt_manifest).
"""
import os
from datetime import datetime, timezone

from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode

project = os.environ["BENCH_PROJECT"]
mode = os.environ.get("BENCH_LOAD_MODE", "dbt_ls")
if mode == "dbt_manifest":
    project_config = ProjectConfig(manifest_path=os.environ["BENCH_MANIFEST"], project_name="bench", dbt_project_path=project)
    load = LoadMode.DBT_MANIFEST
else:
    project_config = ProjectConfig(dbt_project_path=project)
    load = LoadMode.DBT_LS

dag = DbtDag(
    dag_id=f"cosmos_{mode}",
    project_config=project_config,
    profile_config=ProfileConfig(profile_name="bench", target_name="dev", profiles_yml_filepath=f"{project}/profiles.yml"),
    execution_config=ExecutionConfig(dbt_executable_path=os.environ["BENCH_DBT"]),
    render_config=RenderConfig(load_method=load),
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
)
