"""Source-format parsers: each turns one upstream document into rows for a
`collector.ingest_*` function. Fetching and scheduling live elsewhere (the job queue)."""
