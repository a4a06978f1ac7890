//! dbt project discovery: dbt_project.yml, profiles.yml, properties yml, models, seeds, snapshots, analyses, macros, tests, local packages.
