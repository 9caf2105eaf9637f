#!/usr/bin/env python3
"""The summary an analyst would compute with DuckDB: the yardstick of `make bench-summarize`.

Dev tooling (the product is Rust). Over every report JSON below DIR, with DuckDB's
read_json: one row per distinct messageId (the latest report's), then per (category,
target) the count, first and last dead-letter time, and distinct conversations; plus the
distinct conversations overall. Prints {"seconds": <query time>, "groups": N,
"deadLetters": N, "conversations": N} as JSON.

    tools/duckdb_summary.py DIR
"""
import json
import sys
import time

import duckdb

RECORD = (
    "STRUCT(messageId VARCHAR, failureCategory VARCHAR, targetArn VARCHAR, "
    "interactionId VARCHAR, sentTimestamp VARCHAR, \"timestamp\" VARCHAR)"
)


def main():
    root = sys.argv[1]
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        f"""
        CREATE TEMP TABLE latest AS
        WITH r AS (
          SELECT generatedAt, unnest(records) AS rec
          FROM read_json('{root}/**/*.json',
                         columns = {{'generatedAt': 'VARCHAR', 'records': '{RECORD}[]'}},
                         maximum_object_size = 1073741824)
        )
        SELECT rec.messageId AS id, rec.failureCategory AS category, rec.targetArn AS target,
               rec.interactionId AS conversation,
               coalesce(rec.sentTimestamp, rec."timestamp") AS t
        FROM r
        QUALIFY row_number() OVER (PARTITION BY rec.messageId ORDER BY generatedAt DESC) = 1
        """
    )
    groups = con.execute(
        "SELECT category, target, count(*), min(t), max(t), count(DISTINCT conversation) "
        "FROM latest GROUP BY ALL"
    ).fetchall()
    dead_letters, conversations = con.execute(
        "SELECT count(*), count(DISTINCT conversation) FROM latest"
    ).fetchone()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "groups": len(groups), "deadLetters": dead_letters,
                      "conversations": conversations}))


if __name__ == "__main__":
    main()
