#!/usr/bin/env python3
"""Turns the measurements bench/run collected into its table, a JSON file and an SVG chart.

    report.py MEASUREMENTS.jsonl META.json OUTPUT.json [CHART.svg]

Each line of MEASUREMENTS.jsonl is one measured run: {"target": "festapi" | "pgbench" |
"postgraphile" | "extra", "workload": ..., "rps": ..., ...}. The table has a row per FestAPI
workload with the ceiling (pgbench running the same SQL) and PostGraphile beside it, when run.
"""

import json
import sys
from html import escape


def load(path):
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def per_request(total_ms, requests):
    return total_ms / requests if requests else None


def rows(measurements):
    by_target = {}
    for measured in measurements:
        by_target.setdefault(measured["target"], {})[measured["workload"]] = measured
    festapi = by_target.get("festapi", {})
    ceiling = by_target.get("pgbench", {})
    postgraphile = by_target.get("postgraphile", {})
    table = []
    for workload, measured in festapi.items():
        row = {
            "workload": workload,
            "description": measured.get("description", ""),
            "rps": measured["rps"],
            "p50_ms": measured["p50_ms"],
            "p99_ms": measured["p99_ms"],
            "requests": measured["requests"],
            "server_cpu_ms_per_request": per_request(measured["server_ms"], measured["requests"]),
            "postgres_cpu_ms_per_request": per_request(
                measured["postgres_ms"], measured["requests"]
            ),
        }
        if workload in ceiling:
            row["pgbench_tps"] = ceiling[workload]["rps"]
            row["pgbench_postgres_cpu_ms_per_transaction"] = per_request(
                ceiling[workload]["postgres_ms"], ceiling[workload]["requests"]
            )
            row["ratio_to_ceiling"] = measured["rps"] / ceiling[workload]["rps"]
        if workload in postgraphile:
            other = postgraphile[workload]
            row["postgraphile_rps"] = other["rps"]
            row["postgraphile_p50_ms"] = other["p50_ms"]
            row["postgraphile_p99_ms"] = other["p99_ms"]
            row["postgraphile_server_cpu_ms_per_request"] = per_request(
                other["server_ms"], other["requests"]
            )
            row["postgraphile_postgres_cpu_ms_per_request"] = per_request(
                other["postgres_ms"], other["requests"]
            )
            row["ratio_to_postgraphile"] = measured["rps"] / other["rps"]
        table.append(row)
    return table


def number(value, digits=2):
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(table, extras):
    with_postgraphile = any("postgraphile_rps" in row for row in table)
    heading = ["workload", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "PG CPU ms/req",
               "pgbench tx/s", "pgbench PG CPU ms/tx", "vs ceiling"]
    if with_postgraphile:
        heading += ["PostGraphile req/s", "its p99 ms", "its CPU ms/req", "vs PostGraphile"]
    lines = [heading]
    for row in table:
        line = [
            row["workload"],
            number(row["rps"], 0),
            number(row["p50_ms"]),
            number(row["p99_ms"]),
            number(row["server_cpu_ms_per_request"], 3),
            number(row["postgres_cpu_ms_per_request"], 3),
            number(row.get("pgbench_tps"), 0),
            number(row.get("pgbench_postgres_cpu_ms_per_transaction"), 3),
            "-" if "ratio_to_ceiling" not in row else f"{row['ratio_to_ceiling']:.0%}",
        ]
        if with_postgraphile:
            line += [
                number(row.get("postgraphile_rps"), 0),
                number(row.get("postgraphile_p99_ms")),
                number(row.get("postgraphile_server_cpu_ms_per_request"), 3),
                "-" if "ratio_to_postgraphile" not in row else f"{row['ratio_to_postgraphile']:.2f}x",
            ]
        lines.append(line)
    widths = [max(len(line[column]) for line in lines) for column in range(len(heading))]
    for index, line in enumerate(lines):
        cells = [
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths))
        ]
        print("  ".join(cells))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    for name, value in extras.items():
        print(f"{name}: {value}")


def chart(table, path, meta):
    """A horizontal bar chart of req/s per workload: FestAPI, the pgbench ceiling, PostGraphile."""
    series = [("FestAPI", "rps", "#2b6cb0"), ("PostgreSQL alone (pgbench)", "pgbench_tps", "#a0aec0")]
    if any("postgraphile_rps" in row for row in table):
        series.append(("PostGraphile", "postgraphile_rps", "#dd6b20"))
    top = max((row.get(key) or 0) for row in table for _, key, _ in series) or 1
    label_width, bar_width, bar_height, gap = 190, 520, 14, 12
    group_height = len(series) * bar_height + gap
    height = 70 + len(table) * group_height + 30
    width = label_width + bar_width + 110
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">Requests per second '
        f'({escape(meta.get("summary", ""))})</text>',
    ]
    for index, (name, _, colour) in enumerate(series):
        x = 10 + index * 220
        parts.append(f'<rect x="{x}" y="32" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="42">{escape(name)}</text>')
    y = 60
    for row in table:
        parts.append(
            f'<text x="{label_width - 8}" y="{y + group_height / 2}" text-anchor="end">'
            f'{escape(row["workload"])}</text>'
        )
        for index, (_, key, colour) in enumerate(series):
            value = row.get(key)
            if value is None:
                continue
            length = bar_width * value / top
            bar_y = y + index * bar_height
            parts.append(
                f'<rect x="{label_width}" y="{bar_y}" width="{length:.1f}" '
                f'height="{bar_height - 2}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{label_width + length + 4:.1f}" y="{bar_y + bar_height - 4}">'
                f'{value:,.0f}</text>'
            )
        y += group_height
    parts.append(
        f'<text x="10" y="{height - 10}" fill="#555">{escape(meta.get("machine", ""))}</text>'
    )
    parts.append("</svg>")
    with open(path, "w") as svg:
        svg.write("\n".join(parts) + "\n")


def main():
    measurements = load(sys.argv[1])
    with open(sys.argv[2]) as meta_file:
        meta = json.load(meta_file)
    table = rows(measurements)
    extras = {}
    for measured in measurements:
        if measured["target"] == "extra":
            extras[measured["workload"]] = measured["value"]
    print_table(table, extras)
    with open(sys.argv[3], "w") as output:
        json.dump({"meta": meta, "results": table, "extras": extras, "runs": measurements},
                  output, indent=2)
        output.write("\n")
    if len(sys.argv) > 4:
        chart(table, sys.argv[4], meta)


if __name__ == "__main__":
    main()
