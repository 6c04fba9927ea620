"""The benchmark harness: a real `meterline serve`, a load generator and a webhook receiver.

Modules, one concept each:

- `plan`: the deterministic pricing and alert thresholds every workload relies on;
- `catalog`: the metric, rate card, template customer and webhook endpoint, over the HTTP API;
- `clone`: copies one customer's rows N-1 times in the database, whatever the schema;
- `seed`: the seeder (template over HTTP, clone, verify through the API);
- `databases`: fresh SQLite files or PostgreSQL databases, one per run;
- `httpserver`, `receiver`: raw asyncio HTTP servers (the webhook receiver, and the sink that
  the generator's ceiling is measured against);
- `bodies`, `loadgen`: pre-encoded ingest requests and the keep-alive client that posts them;
- `ids`: random uuid4 strings, fast enough to make by the million;
- `watch`: how far the evaluator has got, asked through `POST /v1/events/search`;
- `latency`: crossing acknowledgements and webhook latencies;
- `burst`: (e) simultaneous crossings, and the bare client (`bare_client`) they are compared with;
- `floor`: the same bodies parsed and appended durably, nothing else;
- `workloads`: (a) throughput and (b) latency against one server and its webhook receiver;
- `machine`, `report`, `plot`: what is written to BENCHMARKS.md and beside it;
- `run`: `make bench` and `make bench-quick`.

Run from the repository root: `python -m bench.run --help`, `python -m bench.seed --help`,
`python -m bench.loadgen --help`.
"""
