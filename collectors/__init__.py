"""Collectors: Python workers that move bytes from the outside world into PostgreSQL.

The contract every collector follows (DESIGN.md): fetch (httpx, dnspython, ssl,
smtplib), parse, and hand batches to `collector.*` SQL functions, which validate,
store and reject. No scoring, de-duplication or change detection happens here. Work that
needs the network arrives as rows of the job queue, claimed with FOR UPDATE SKIP LOCKED,
so any number of collector processes can run side by side.
"""
