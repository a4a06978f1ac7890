#!/usr/bin/env python3
"""Generate a synthetic dbt project for benchmarks.

Shape: about 10 % staging models, each on a seed (ref) or a source; the rest in
10 layers, each model ref-ing 1-4 models of the previous three layers. A few
macros, vars, config() calls, incremental blocks, and tests on one model in five.
Deterministic for a given --models and --seed.

    python3 bench/gen_project.py --models 1000 /tmp/bench1k
"""
import argparse
import os
import random
import shutil

LAYERS = 10
SEEDS = 10
SEED_ROWS = 20
CATEGORIES = ["north", "south", "east", "west"]

DBT_PROJECT = """name: bench
version: "1.0.0"
config-version: 2
profile: bench

vars:
  scale_factor: 3
  min_amount: 0
  bench:
    label: synthetic

models:
  bench:
    +materialized: table
    staging:
      +materialized: view
      +tags: ["staging"]
"""

PROFILES = """bench:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: bench.duckdb
      schema: main
      threads: 4
"""

ORRERY = """[pipeline]
name = "bench"

[project]
path = "."
"""

MACROS = """{% macro scaled(column, factor=1) -%}
    ({{ column }} * {{ factor }})
{%- endmacro %}

{% macro bucket(column, buckets=4) -%}
    ({{ column }} % {{ buckets }})
{%- endmacro %}

{% macro label() -%}
    {{ return("'" ~ var('label', 'none') ~ "'") }}
{%- endmacro %}
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def model_sql(rng, parents, incremental, config_line):
    """A model aggregating the union of its parents by id, so `id` stays unique."""
    union = "\n    union all\n".join(
        f"    select id, amount, category from {{{{ ref('{p}') }}}}" for p in parents
    )
    lines = []
    if config_line:
        lines.append(config_line)
        lines.append("")
    lines.append("select")
    lines.append("    id,")
    lines.append(f"    sum({{{{ scaled('amount', factor={rng.randint(1, 3)}) }}}}) % 100000 as amount,")
    lines.append("    max(category) as category")
    lines.append("from (")
    lines.append(union)
    lines.append(") as parents")
    lines.append("where amount >= {{ var('min_amount') }}")
    if incremental:
        lines.append("{% if is_incremental() %}")
        lines.append("    and id > (select coalesce(max(id), 0) from {{ this }})")
        lines.append("{% endif %}")
    lines.append("group by id")
    return "\n".join(lines) + "\n"


def tests_yml(names):
    out = ["version: 2", "", "models:"]
    for n in names:
        out += [f"  - name: {n}", "    columns:", "      - name: id", "        data_tests:",
                "          - unique", "          - not_null"]
    return "\n".join(out) + "\n"


def generate(total, out, seed):
    rng = random.Random(seed)
    if os.path.exists(out):
        shutil.rmtree(out)
    write(os.path.join(out, "dbt_project.yml"), DBT_PROJECT)
    write(os.path.join(out, "profiles.yml"), PROFILES)
    write(os.path.join(out, "orrery.toml"), ORRERY)
    write(os.path.join(out, "macros", "bench_macros.sql"), MACROS)

    for s in range(SEEDS):
        rows = ["id,amount,category"]
        rows += [f"{i},{rng.randint(1, 999)},{rng.choice(CATEGORIES)}" for i in range(1, SEED_ROWS + 1)]
        write(os.path.join(out, "seeds", f"raw_{s}.csv"), "\n".join(rows) + "\n")
    src = ["version: 2", "", "sources:", "  - name: raw", '    schema: "{{ target.schema }}"', "    tables:"]
    src += [f"      - name: raw_{s}" for s in range(SEEDS)]
    write(os.path.join(out, "models", "staging", "sources.yml"), "\n".join(src) + "\n")

    n_staging = max(1, total // 10)
    staging = []
    for i in range(n_staging):
        name = f"stg_{i:05d}"
        s = rng.randrange(SEEDS)
        if i % 2:
            # sources are not dbt nodes: depends_on keeps the seed ahead of the view in `dbt build`
            body = (f"-- depends_on: {{{{ ref('raw_{s}') }}}}\n"
                    f"select id, amount, category, {{{{ label() }}}} as label\n"
                    f"from {{{{ source('raw', 'raw_{s}') }}}}\n")
        else:
            body = (f"select id, amount, {{{{ bucket('id') }}}} as bucket, category\n"
                    f"from {{{{ ref('raw_{s}') }}}}\n")
        write(os.path.join(out, "models", "staging", name + ".sql"), body)
        staging.append(name)

    layers = [staging]
    is_view = {}
    rest = total - n_staging
    tested = [n for k, n in enumerate(staging) if k % 5 == 0]
    for layer in range(1, LAYERS + 1):
        count = rest // LAYERS + (1 if layer <= rest % LAYERS else 0)
        pool = [n for l in layers[-3:] for n in l]
        names = []
        folder = os.path.join(out, "models", f"layer_{layer:02d}")
        layer_tested = []
        for i in range(count):
            name = f"m{layer:02d}_{i:05d}"
            parents = rng.sample(pool, min(len(pool), rng.randint(1, 4)))
            roll = rng.random()
            incremental = roll < 0.1
            config_line = None
            if incremental:
                config_line = "{{ config(materialized='incremental', unique_key='id') }}"
            elif roll < 0.3 and not any(is_view.get(p) for p in parents):
                # no view on a view: keeps DuckDB's view expansion shallow
                config_line = "{{ config(materialized='view', tags=['light']) }}"
                is_view[name] = True
            elif roll < 0.4:
                config_line = "{{ config(tags=['heavy']) }}"
            write(os.path.join(folder, name + ".sql"), model_sql(rng, parents, incremental, config_line))
            names.append(name)
            if i % 5 == 0:
                layer_tested.append(name)
        if layer_tested:
            write(os.path.join(folder, "tests.yml"), tests_yml(layer_tested))
        layers.append(names)
    write(os.path.join(out, "models", "staging", "tests.yml"), tests_yml(tested))
    return sum(len(l) for l in layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("out_dir")
    a = ap.parse_args()
    n = generate(a.models, a.out_dir, a.seed)
    print(f"{n} models written to {a.out_dir}")


if __name__ == "__main__":
    main()
